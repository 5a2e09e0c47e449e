"""chainrule.hub: torch.hub — pretrained weights from a URL, models from a ``hubconf.py``.

``load_state_dict_from_url`` downloads a checkpoint once into ``get_dir()/checkpoints`` (or
``model_dir``), checks it against the hash in its name when ``check_hash=True``, and reads it with
``chainrule.load``: torch's zip and legacy checkpoints and safetensors files, with
``weights_only=True`` by default, so a hostile file is refused as ``chainrule.load`` refuses it
(torch 2.13 passes ``weights_only=False`` here; a state dict loads the same either way).
``download_url_to_file`` writes to a temporary file beside ``dst`` and renames it only once the
download is complete and its hash checked, so no half-written file is ever left under ``dst``.

``load``/``list``/``help`` import a directory's ``hubconf.py`` as torch does: with
``source='local'`` any directory; with ``source='github'`` (the default) the zip of a branch or
tag is fetched from GitHub into ``get_dir()`` after torch's trust check. ``hubconf.py`` is code:
loading it runs it, so only use repositories you trust. Entry points written against torch run
here when they use what chainrule provides (``import chainrule as torch`` or chainrule standing in
for ``torch``).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import uuid
import warnings
import zipfile
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse

from .serialization import load as _load_checkpoint

__all__ = ["get_dir", "set_dir", "load", "list", "help", "load_state_dict_from_url", "download_url_to_file"]

# the hash prefix in a checkpoint's file name (``resnet18-f37072fd.pth``), as torch.hub spells it;
# libraries that fetch their own weights (timm) import it to check downloads
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
_PATH_SEPARATOR = re.compile(r"[/\\]")

# repositories torch.hub trusts without asking (``trust_repo="check"``)
_TRUSTED_REPO_OWNERS = ("facebookresearch", "facebookincubator", "pytorch", "fairinternal")
ENV_GITHUB_TOKEN = "GITHUB_TOKEN"
ENV_TORCH_HOME = "TORCH_HOME"
ENV_XDG_CACHE_HOME = "XDG_CACHE_HOME"
DEFAULT_CACHE_DIR = "~/.cache"
VAR_DEPENDENCY = "dependencies"
MODULE_HUBCONF = "hubconf.py"
READ_DATA_CHUNK = 128 * 1024

_hub_dir = None


def get_dir() -> str:
    """``$TORCH_HOME/hub``, where ``$TORCH_HOME`` defaults to ``$XDG_CACHE_HOME/torch`` and that to
    ``~/.cache/torch``; or what ``set_dir`` set. As torch.hub.get_dir."""
    if os.getenv("TORCH_HUB"):
        warnings.warn("TORCH_HUB is deprecated, please use env TORCH_HOME instead", stacklevel=2)
    if _hub_dir is not None:
        return _hub_dir
    return os.path.join(_get_torch_home(), "hub")


def _get_torch_home() -> str:
    # private in torch too, yet imported by torchvision and older timm for their own caches
    return os.path.expanduser(
        os.getenv(ENV_TORCH_HOME, os.path.join(os.getenv(ENV_XDG_CACHE_HOME, DEFAULT_CACHE_DIR), "torch")))


def set_dir(d: str | os.PathLike) -> None:
    """Use ``d`` (``~`` expanded) as the hub directory from now on. As torch.hub.set_dir."""
    global _hub_dir
    _hub_dir = os.path.expanduser(os.fspath(d))


def download_url_to_file(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
    """Download ``url`` to the path ``dst``, as torch.hub.download_url_to_file.

    The bytes go to ``dst.<random>.partial`` in the same directory, renamed to ``dst`` once all have
    arrived and, when ``hash_prefix`` is given, the file's SHA-256 starts with it (else
    ``RuntimeError('invalid hash value (expected "...", got "...")')``). A download shorter than its
    Content-Length raises RuntimeError (torch 2.13 keeps the short file). On any failure the partial
    file is removed and ``dst`` is untouched. ``progress`` shows a tqdm bar on stderr (torch.hub's
    percentage counter when tqdm is not installed).
    """
    dst = os.path.expanduser(dst)
    # a plain open, not NamedTemporaryFile, so the file gets the user's usual permissions (as torch)
    for _ in range(tempfile.TMP_MAX):
        partial = dst + "." + uuid.uuid4().hex + ".partial"
        try:
            f = open(partial, "x+b")  # noqa: SIM115 - closed in the finally below
        except FileExistsError:
            continue
        break
    else:
        raise FileExistsError(errno.EEXIST, "No usable temporary file name found")
    try:
        with _urlopen(url, {"User-Agent": "torch.hub"}) as response:
            lengths = response.info().get_all("Content-Length")
            file_size = int(lengths[0]) if lengths else None
            sha256 = hashlib.sha256() if hash_prefix is not None else None
            with _progress_bar_class()(total=file_size, disable=not progress, unit="B", unit_scale=True,
                                       unit_divisor=1024) as bar:
                while chunk := response.read(READ_DATA_CHUNK):
                    f.write(chunk)
                    if sha256 is not None:
                        sha256.update(chunk)
                    bar.update(len(chunk))
            f.close()
            # a connection dropped early ends the reads quietly; torch 2.13 then keeps the short file
            received = os.path.getsize(partial)
            if file_size is not None and received != file_size:
                raise RuntimeError(f"download_url_to_file: {url} ended after {received} of the {file_size} bytes "
                                   f"its Content-Length announced; {dst} was not written")
            if sha256 is not None:
                digest = sha256.hexdigest()
                if digest[:len(hash_prefix)] != hash_prefix:
                    raise RuntimeError(f'invalid hash value (expected "{hash_prefix}", got "{digest}")')
        shutil.move(partial, dst)
    finally:
        f.close()
        if os.path.exists(partial):
            os.remove(partial)


def load_state_dict_from_url(url: str, model_dir: str | None = None, map_location=None, progress: bool = True,
                             check_hash: bool = False, file_name: str | None = None,
                             weights_only: bool = True):
    """Download a checkpoint once and load it, as torch.hub.load_state_dict_from_url.

    The file is cached as ``model_dir/<file_name or the URL's last path segment>`` (``model_dir``
    defaults to ``get_dir()/checkpoints``) and reused when present. With ``check_hash`` the part of
    the name matched by ``HASH_REGEX`` (``resnet18-f37072fd.pth`` → ``f37072fd``) must prefix the
    download's SHA-256. A zip holding a single file (weights zipped by hand, torch < 1.6) is
    extracted into ``model_dir`` first, with torch's FutureWarning. The file is read with
    ``chainrule.load(map_location=..., weights_only=...)``; ``weights_only`` defaults to True here
    (torch 2.13: False), so only tensors and containers are rebuilt unless you pass False for a
    file you trust.
    """
    if os.getenv("TORCH_MODEL_ZOO"):
        warnings.warn("TORCH_MODEL_ZOO is deprecated, please use env TORCH_HOME instead", stacklevel=2)
    if model_dir is None:
        model_dir = os.path.join(get_dir(), "checkpoints")
    os.makedirs(model_dir, exist_ok=True)
    filename = file_name if file_name is not None else os.path.basename(urlparse(url).path)
    cached_file = os.path.join(model_dir, filename)
    if not os.path.exists(cached_file):
        sys.stdout.write(f'Downloading: "{url}" to {cached_file}\n')
        hash_prefix = None
        if check_hash:
            match = HASH_REGEX.search(filename)
            hash_prefix = match.group(1) if match else None
        download_url_to_file(url, cached_file, hash_prefix, progress=progress)
    if _is_legacy_zip_format(cached_file):
        warnings.warn("Falling back to the old format < 1.6. This support will be deprecated in favor of default "
                      "zipfile format introduced in 1.6. Please redo torch.save() to save it in the new zipfile "
                      "format.", FutureWarning, stacklevel=2)
        cached_file = _extract_legacy_zip(cached_file, model_dir)
    return _load_checkpoint(cached_file, map_location=map_location, weights_only=weights_only)


def _is_legacy_zip_format(filename: str) -> bool:
    # torch.save's own zip has several members; a zip of one file is weights zipped by hand
    if zipfile.is_zipfile(filename):
        with zipfile.ZipFile(filename) as archive:
            members = archive.infolist()
        return len(members) == 1 and not members[0].is_dir()
    return False


def _extract_legacy_zip(filename: str, model_dir: str) -> str:
    with zipfile.ZipFile(filename) as archive:
        _safe_extract_zip(archive, model_dir)
        return os.path.join(model_dir, archive.infolist()[0].filename)


def _safe_extract_zip(archive: zipfile.ZipFile, extract_to: str) -> None:
    """Extract every member, refusing (ValueError, torch's wording) any whose path is absolute or
    climbs out of ``extract_to`` — checked for all members before the first is written."""
    root = Path(extract_to).resolve(strict=False)
    for member in archive.infolist():
        name = os.path.normpath(member.filename)
        if name.startswith(("/", "\\")) or (len(name) >= 2 and name[1] == ":" and name[0].isalpha()):
            raise ValueError(f"Archive entry has absolute path: {member.filename}")
        if ".." in _PATH_SEPARATOR.split(name):
            raise ValueError(f"Archive entry contains directory traversal: {member.filename}")
        if not (root / name).resolve(strict=False).is_relative_to(root):
            raise ValueError(f"Archive entry escapes target directory: {member.filename}")
    archive.extractall(root)


# --- hubconf.py: load / list / help ---

def load(repo_or_dir: str, model: str, *args, source: str = "github", trust_repo="check",
         force_reload: bool = False, verbose: bool = True, skip_validation: bool = False, **kwargs):
    """Call the entry point ``model`` of a ``hubconf.py`` with ``*args, **kwargs``, as torch.hub.load.

    ``source='local'``: ``repo_or_dir`` is a directory holding ``hubconf.py``. ``source='github'``:
    ``repo_or_dir`` is ``owner/name[:ref]``, downloaded as by ``list``. The directory is put first on
    ``sys.path`` while ``hubconf.py`` is imported and the entry point runs. Raises RuntimeError
    ``Missing dependencies: a, b`` when a module in hubconf's ``dependencies`` list cannot be found,
    and ``Cannot find callable <model> in hubconf`` when the entry point is missing.
    """
    directory = _repo_dir(repo_or_dir, source, force_reload, trust_repo, verbose, skip_validation)
    with _added_to_sys_path(directory):
        entry = _load_entry_from_hubconf(_import_hubconf(directory), model)
        return entry(*args, **kwargs)


def list(github: str, force_reload: bool = False, skip_validation: bool = False,  # noqa: A001 - torch.hub's name
         trust_repo="check", verbose: bool = True, *, source: str = "github") -> builtins.list[str]:
    """The public callables of a repository's ``hubconf.py`` (names not starting with ``_``), sorted,
    as torch.hub.list. ``source='local'`` (a chainrule addition; torch.hub.list only fetches from
    GitHub) reads a directory instead."""
    hub_module = _import_hubconf(_repo_dir(github, source, force_reload, trust_repo, verbose, skip_validation))
    return [name for name in dir(hub_module) if callable(getattr(hub_module, name)) and not name.startswith("_")]


def help(github: str, model: str, force_reload: bool = False, skip_validation: bool = False,  # noqa: A001
         trust_repo="check", *, source: str = "github") -> str | None:
    """The docstring of the entry point ``model``, as torch.hub.help; ``source='local'`` as in ``list``."""
    hub_module = _import_hubconf(_repo_dir(github, source, force_reload, trust_repo, True, skip_validation))
    return _load_entry_from_hubconf(hub_module, model).__doc__


def _repo_dir(github, source, force_reload, trust_repo, verbose, skip_validation) -> str:
    """The directory holding hubconf.py: ``github`` itself for source='local', else the cached repo."""
    source = source.lower()
    if source == "local":
        return github
    if source != "github":
        raise ValueError(f'Unknown source: "{source}". Allowed values: "github" | "local".')
    return _get_cache_or_reload(github, force_reload, trust_repo, verbose=verbose, skip_validation=skip_validation)


@contextlib.contextmanager
def _added_to_sys_path(path):
    # hubconf.py imports its sibling modules by plain name, as torch.hub allows
    sys.path.insert(0, path)
    try:
        yield
    finally:
        sys.path.remove(path)


def _import_hubconf(directory: str):
    path = os.path.join(directory, MODULE_HUBCONF)
    with _added_to_sys_path(directory):
        # not entered in sys.modules: two directories' hubconf files never shadow each other
        spec = importlib.util.spec_from_file_location(MODULE_HUBCONF, path)
        if spec is None:
            raise AssertionError(f"failed to load spec from {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def _load_entry_from_hubconf(hub_module, model):
    if not isinstance(model, str):
        raise ValueError("Invalid input: model should be a string of function name")
    dependencies = getattr(hub_module, VAR_DEPENDENCY, None) if VAR_DEPENDENCY in dir(hub_module) else None
    if dependencies is not None:
        missing = [name for name in dependencies if importlib.util.find_spec(name) is None]
        if missing:
            raise RuntimeError(f"Missing dependencies: {', '.join(missing)}")
    entry = getattr(hub_module, model) if model in dir(hub_module) else None
    if entry is None or not callable(entry):
        raise RuntimeError(f"Cannot find callable {model} in hubconf")
    return entry


# --- source='github': a branch's zip, cached under get_dir() ---

def _git_archive_link(repo_owner: str, repo_name: str, ref: str) -> str:
    return f"https://github.com/{repo_owner}/{repo_name}/zipball/{ref}"


def _urlopen(url: str, headers: dict | None = None):
    # urllib.request brings http.client, email and ssl (about 50 ms): imported on the first request,
    # not at ``import chainrule``
    from urllib.request import Request, urlopen

    return urlopen(Request(url, headers=headers or {}))


def _read_url(url: str, headers: dict | None = None) -> str:
    with _urlopen(url, headers) as response:
        return response.read().decode(response.headers.get_content_charset("utf-8"))


def _parse_repo_info(github: str) -> tuple[str, str, str]:
    repo_info, ref = github.split(":") if ":" in github else (github, None)
    repo_owner, repo_name = repo_info.split("/")
    if ref is None:
        # no ref given: the default branch is main when it exists, else master (torch's guess)
        try:
            with _urlopen(f"https://github.com/{repo_owner}/{repo_name}/tree/main/"):
                ref = "main"
        except HTTPError as error:
            if error.code != 404:
                raise
            ref = "master"
        except URLError as error:
            # offline: a cached copy of either branch will do
            ref = next((branch for branch in ("main", "master")
                        if os.path.exists(f"{get_dir()}/{repo_owner}_{repo_name}_{branch}")), None)
            if ref is None:
                raise RuntimeError("It looks like there is no internet connection and the repo could not be "
                                   f"found in the cache ({get_dir()})") from error
    return repo_owner, repo_name, ref


def _validate_not_a_forked_repo(repo_owner: str, repo_name: str, ref: str) -> None:
    # a commit of a fork is reachable under the parent's name on GitHub; refuse refs the repo lacks
    headers = {"Accept": "application/vnd.github.v3+json"}
    token = os.environ.get(ENV_GITHUB_TOKEN)
    if token is not None:
        headers["Authorization"] = f"token {token}"
    for url_prefix in (f"https://api.github.com/repos/{repo_owner}/{repo_name}/branches",
                       f"https://api.github.com/repos/{repo_owner}/{repo_name}/tags"):
        page = 0
        while True:
            page += 1
            url = f"{url_prefix}?per_page=100&page={page}"
            try:
                response = json.loads(_read_url(url, headers))
            except HTTPError:
                headers.pop("Authorization", None)  # retry without a token that lacks the permission
                response = json.loads(_read_url(url, headers))
            if not response:
                break
            if any(entry["name"] == ref or entry["commit"]["sha"].startswith(ref) for entry in response):
                return
    raise ValueError(f"Cannot find {ref} in https://github.com/{repo_owner}/{repo_name}. "
                     "If it's a commit from a forked repo, please call hub.load() with forked repo directly.")


def _check_repo_is_trusted(repo_owner: str, repo_name: str, owner_name_branch: str, trust_repo) -> None:
    hub_dir = get_dir()
    trusted_list = os.path.join(hub_dir, "trusted_list")
    Path(trusted_list).touch()
    with open(trusted_list) as file:
        trusted_repos = tuple(line.strip() for line in file)
    # a repository torch.hub downloaded before trust_repo existed counts as trusted (torch's rule)
    downloaded_before = next(os.walk(hub_dir))[1]
    owner_name = f"{repo_owner}_{repo_name}"
    is_trusted = (owner_name in trusted_repos or owner_name_branch in downloaded_before
                  or repo_owner in _TRUSTED_REPO_OWNERS)
    if trust_repo is False or (trust_repo == "check" and not is_trusted):
        response = input(f"The repository {owner_name} does not belong to the list of trusted repositories and as "
                         "such cannot be downloaded. Do you trust this repository and wish to add it to the trusted "
                         "list of repositories (y/N)?")
        if response.lower() in ("y", "yes"):
            if is_trusted:
                print("The repository is already trusted.")
        elif response.lower() in ("n", "no", ""):
            raise Exception("Untrusted repository.")  # noqa: TRY002 - torch.hub raises exactly this
        else:
            raise ValueError(f"Unrecognized response {response}.")
    if not is_trusted:
        with open(trusted_list, "a") as file:
            file.write(owner_name + "\n")


def _remove_if_exists(path: str) -> None:
    if os.path.isfile(path):
        os.remove(path)
    elif os.path.exists(path):
        shutil.rmtree(path)


def _get_cache_or_reload(github: str, force_reload: bool, trust_repo, verbose: bool = True,
                         skip_validation: bool = False) -> str:
    hub_dir = get_dir()
    os.makedirs(hub_dir, exist_ok=True)
    repo_owner, repo_name, ref = _parse_repo_info(github)
    # a branch may contain '/', which would read as a path
    normalized_ref = ref.replace("/", "_")
    owner_name_branch = "_".join([repo_owner, repo_name, normalized_ref])
    repo_dir = os.path.join(hub_dir, owner_name_branch)
    _check_repo_is_trusted(repo_owner, repo_name, owner_name_branch, trust_repo)
    if not force_reload and os.path.exists(repo_dir):
        if verbose:
            sys.stderr.write(f"Using cache found in {repo_dir}\n")
        return repo_dir
    if not skip_validation:
        _validate_not_a_forked_repo(repo_owner, repo_name, ref)
    cached_file = os.path.join(hub_dir, normalized_ref + ".zip")
    _remove_if_exists(cached_file)
    url = _git_archive_link(repo_owner, repo_name, ref)
    sys.stdout.write(f'Downloading: "{url}" to {cached_file}\n')
    try:
        download_url_to_file(url, cached_file, progress=False)
    except HTTPError as error:
        if error.code != 300:
            raise
        # 300 Multiple Choices: the ref is both a tag and a branch; take the branch, as git does
        warnings.warn(f"The ref {ref} is ambiguous. Perhaps it is both a tag and a branch in the repo? Torchhub will "
                      "now assume that it's a branch. You can disambiguate tags and branches by explicitly passing "
                      "refs/heads/branch_name or refs/tags/tag_name as the ref. That might require using "
                      "skip_validation=True.", stacklevel=2)
        download_url_to_file(_git_archive_link(repo_owner, repo_name, f"refs/heads/{ref}"), cached_file,
                             progress=False)
    with zipfile.ZipFile(cached_file) as archive:
        # GitHub's zip holds one top folder (owner-name-sha); it becomes owner_name_ref
        extracted_repo = os.path.join(hub_dir, archive.infolist()[0].filename)
        _remove_if_exists(extracted_repo)
        _safe_extract_zip(archive, hub_dir)
    _remove_if_exists(cached_file)
    _remove_if_exists(repo_dir)
    shutil.move(extracted_repo, repo_dir)
    return repo_dir


class _FallbackProgressBar:
    """torch.hub's stand-in for tqdm when tqdm is not installed: counts ``update``s and writes the
    percentage (or bytes) to stderr; like torch's, it is not iterable."""

    def __init__(self, total=None, disable=False, unit=None, *args, **kwargs):
        self.total, self.disable, self.n = total, disable, 0

    def update(self, n):
        if self.disable:
            return
        self.n += n
        progress = f"{self.n:.1f} bytes" if self.total is None else f"{100 * self.n / float(self.total):.1f}%"
        sys.stderr.write(f"\r{progress}")
        sys.stderr.flush()

    def set_description(self, *args, **kwargs):
        pass

    def write(self, s):
        sys.stderr.write(f"{s}\n")

    def close(self):
        self.disable = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        if not self.disable:
            sys.stderr.write("\n")


def _progress_bar_class():
    # torch.hub re-exports tqdm (``from torch.hub import tqdm`` in scripts), or its stand-in when
    # tqdm is not installed; imported on first use, not at ``import chainrule``
    if "tqdm" not in globals():
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = _FallbackProgressBar
        globals()["tqdm"] = tqdm
    return globals()["tqdm"]


def __getattr__(name: str):
    if name == "tqdm":
        return _progress_bar_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
