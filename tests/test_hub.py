"""torch.hub against torch 2.13's, on a local HTTP server (no internet here): downloads, the
checkpoint cache, hash checks, checkpoints loaded from a URL, and hubconf.py entry points."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import os
import pickle
import sys
import threading
import zipfile
from urllib.error import HTTPError, URLError

import numpy as np
import pytest
import torch

import chainrule
from chainrule import hub

HUBCONF = '''"""A hub of our own: a small linear layer, its weights optionally from a URL."""
import torch
from torch import nn

from hub_sibling_sizes import IN_FEATURES, OUT_FEATURES

dependencies = ["numpy"]


def linear(url=None, bias=True, **load_kwargs):
    """A linear layer 3 -> 2; with ``url``, its weights are that checkpoint's."""
    layer = nn.Linear(IN_FEATURES, OUT_FEATURES, bias=bias)
    if url is not None:
        layer.load_state_dict(torch.hub.load_state_dict_from_url(url, **load_kwargs))
    return layer


def sizes():
    return IN_FEATURES, OUT_FEATURES


def _private_helper():
    return None


NOT_CALLABLE = 3
'''


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        if self.path == "/truncated.pth":  # promises 1000 bytes, sends 10, hangs up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def served(tmp_path):
    """(folder the server serves, its base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hub_dirs(monkeypatch, tmp_path):
    """Point each library's hub directory at its own folder; returns (torch's, chainrule's)."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch_hub"))
    monkeypatch.setattr(hub, "_hub_dir", str(tmp_path / "chainrule_hub"))
    return tmp_path / "torch_hub", tmp_path / "chainrule_hub"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _torch_checkpoint(state) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _state():
    generator = torch.Generator().manual_seed(0)
    return {"weight": torch.randn(2, 3, generator=generator), "bias": torch.randn(2, generator=generator)}


def _listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


# --- where things are cached ---

def test_get_dir_follows_torch_home_xdg_cache_home_and_set_dir_as_torch(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setattr(hub, "_hub_dir", None)
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert hub.get_dir() == torch.hub.get_dir() == os.path.expanduser("~/.cache/torch/hub")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.get_dir() == torch.hub.get_dir() == str(tmp_path / "xdg" / "torch" / "hub")
    monkeypatch.setenv("TORCH_HOME", "~/th")
    assert hub.get_dir() == torch.hub.get_dir() == os.path.expanduser("~/th/hub")
    assert hub._get_torch_home() == torch.hub._get_torch_home()  # torchvision imports it
    hub.set_dir(tmp_path / "mine")
    torch.hub.set_dir(tmp_path / "mine")
    assert hub.get_dir() == torch.hub.get_dir() == str(tmp_path / "mine")
    monkeypatch.setenv("TORCH_HUB", "old")
    with pytest.warns(UserWarning, match="TORCH_HUB is deprecated, please use env TORCH_HOME instead"):
        hub.get_dir()


# --- download_url_to_file ---

def test_download_url_to_file_writes_the_bytes_as_torch_and_leaves_no_partial_file(served, tmp_path):
    root, base = served
    payload = os.urandom(300_000)  # three read chunks
    (root / "blob.bin").write_bytes(payload)
    for library, folder in ((torch.hub, tmp_path / "t"), (hub, tmp_path / "c")):
        folder.mkdir()
        library.download_url_to_file(f"{base}/blob.bin", str(folder / "blob.bin"),
                                     hash_prefix=_sha256(payload)[:10], progress=False)
        assert (folder / "blob.bin").read_bytes() == payload
        assert _listing(folder) == ["blob.bin"]


def test_download_url_to_file_refuses_a_wrong_hash_with_torchs_error_and_writes_nothing(served, tmp_path):
    root, base = served
    (root / "blob.bin").write_bytes(b"not the weights you expect")
    digest = _sha256(b"not the weights you expect")
    errors = []
    for library, folder in ((torch.hub, tmp_path / "t"), (hub, tmp_path / "c")):
        folder.mkdir()
        (folder / "blob.bin").write_bytes(b"a good file from before")
        with pytest.raises(RuntimeError) as error:
            library.download_url_to_file(f"{base}/blob.bin", str(folder / "blob.bin"), hash_prefix="deadbeef",
                                         progress=False)
        errors.append(str(error.value))
        assert _listing(folder) == ["blob.bin"]  # no .partial left behind
        assert (folder / "blob.bin").read_bytes() == b"a good file from before"  # not overwritten
    assert errors[0] == errors[1] == f'invalid hash value (expected "deadbeef", got "{digest}")'


def test_a_download_cut_short_raises_and_leaves_nothing_where_torch_keeps_the_short_file(served, tmp_path):
    _, base = served
    torch.hub.download_url_to_file(f"{base}/truncated.pth", str(tmp_path / "torch.pth"), progress=False)
    assert (tmp_path / "torch.pth").read_bytes() == b"0123456789"  # torch 2.13: 10 of 1000 bytes, no error
    folder = tmp_path / "c"
    folder.mkdir()
    with pytest.raises(RuntimeError, match=r"truncated\.pth ended after 10 of the 1000 bytes its Content-Length "
                                           r"announced; .*w\.pth was not written"):
        hub.download_url_to_file(f"{base}/truncated.pth", str(folder / "w.pth"), progress=False)
    assert _listing(folder) == []


def test_a_missing_url_raises_torchs_http_error(served, tmp_path):
    _, base = served
    codes = []
    for library in (torch.hub, hub):
        with pytest.raises(Exception) as error:
            library.download_url_to_file(f"{base}/absent.pth", str(tmp_path / "absent.pth"), progress=False)
        codes.append((type(error.value), error.value.code))
    assert codes[0] == codes[1] and codes[1][1] == 404
    assert _listing(tmp_path) == ["served"]


def test_progress_without_tqdm_is_torchs_percentage_on_stderr_and_progress_false_is_silent(
        served, tmp_path, monkeypatch, capsys):
    root, base = served
    (root / "blob.bin").write_bytes(bytes(200_000))
    monkeypatch.setattr(torch.hub, "tqdm", torch.hub._Faketqdm)  # as when tqdm is not installed
    monkeypatch.setattr(hub, "tqdm", hub._FallbackProgressBar, raising=False)
    shown = []
    for library, progress in ((torch.hub, True), (hub, True), (torch.hub, False), (hub, False)):
        library.download_url_to_file(f"{base}/blob.bin", str(tmp_path / "blob.bin"), progress=progress)
        shown.append(capsys.readouterr())
    assert shown[0].err == shown[1].err == "\r65.5%\r100.0%\n"
    assert shown[2].err == shown[3].err == "" and all(output.out == "" for output in shown)


def test_progress_uses_tqdm_when_installed(served, tmp_path, monkeypatch, capsys):
    pytest.importorskip("tqdm")
    root, base = served
    (root / "blob.bin").write_bytes(bytes(1000))
    monkeypatch.delattr(hub, "tqdm", raising=False)
    hub.download_url_to_file(f"{base}/blob.bin", str(tmp_path / "blob.bin"), progress=True)
    assert "100%" in capsys.readouterr().err  # tqdm's bar, not the stand-in's "100.0%"


# --- load_state_dict_from_url ---

def test_load_state_dict_from_url_loads_a_torch_checkpoint_as_torch_into_the_same_cache(
        served, hub_dirs, capsys, monkeypatch):
    root, base = served
    data = _torch_checkpoint(_state())
    name = f"linear-{_sha256(data)[:8]}.pth"
    (root / name).write_bytes(data)
    url = f"{base}/{name}"
    expected = torch.hub.load_state_dict_from_url(url, check_hash=True, progress=False)
    torch_out = capsys.readouterr().out
    loaded = hub.load_state_dict_from_url(url, map_location="cpu", check_hash=True, progress=False)
    chainrule_out = capsys.readouterr().out
    torch_dir, chainrule_dir = hub_dirs
    assert chainrule_out == torch_out.replace(str(torch_dir), str(chainrule_dir))
    assert chainrule_out == f'Downloading: "{url}" to {chainrule_dir / "checkpoints" / name}\n'
    assert _listing(chainrule_dir / "checkpoints") == _listing(torch_dir / "checkpoints") == [name]
    assert (chainrule_dir / "checkpoints" / name).read_bytes() == data
    assert list(loaded) == list(expected)
    for key in expected:
        assert isinstance(loaded[key], chainrule.Tensor) and loaded[key].dtype == chainrule.float32
        np.testing.assert_array_equal(loaded[key].numpy(), expected[key].numpy())
    # the cached copy is reused: no second download, even once the server no longer has it
    (root / name).unlink()
    again = hub.load_state_dict_from_url(url, check_hash=True, map_location=lambda storage, location: storage)
    assert capsys.readouterr().out == ""
    np.testing.assert_array_equal(again["weight"].numpy(), expected["weight"].numpy())


def test_load_state_dict_from_url_with_a_wrong_hash_in_the_name_raises_torchs_error_and_caches_nothing(
        served, hub_dirs):
    root, base = served
    data = _torch_checkpoint(_state())
    (root / "linear-deadbeef.pth").write_bytes(data)
    errors = []
    for library, folder in zip((torch.hub, hub), hub_dirs):
        with pytest.raises(RuntimeError) as error:
            library.load_state_dict_from_url(f"{base}/linear-deadbeef.pth", check_hash=True, progress=False)
        errors.append(str(error.value))
        assert _listing(folder / "checkpoints") == []
    assert errors[0] == errors[1] == f'invalid hash value (expected "deadbeef", got "{_sha256(data)}")'
    # without check_hash the name's hash is not looked at, in either library
    for library, folder in zip((torch.hub, hub), hub_dirs):
        library.load_state_dict_from_url(f"{base}/linear-deadbeef.pth", progress=False)
        assert _listing(folder / "checkpoints") == ["linear-deadbeef.pth"]


def test_file_name_and_model_dir_choose_where_the_checkpoint_is_cached(served, tmp_path):
    root, base = served
    (root / "weights.pth").write_bytes(_torch_checkpoint(_state()))
    for library, folder in ((torch.hub, tmp_path / "t"), (hub, tmp_path / "c")):
        library.load_state_dict_from_url(f"{base}/weights.pth?download=1", model_dir=str(folder),
                                         file_name="renamed.pth", progress=False)
        assert _listing(folder) == ["renamed.pth"]


def test_a_single_file_zip_is_extracted_beside_it_with_torchs_future_warning(served, hub_dirs):
    # weights zipped by hand around a torch < 1.6 (legacy) checkpoint
    root, base = served
    legacy = io.BytesIO()
    torch.save(_state(), legacy, _use_new_zipfile_serialization=False)
    with zipfile.ZipFile(root / "old.zip", "w") as archive:
        archive.writestr("old_weights.pth", legacy.getvalue())
    results = []
    for library, folder in zip((torch.hub, hub), hub_dirs):
        with pytest.warns(FutureWarning, match=r"Falling back to the old format < 1\.6"):
            results.append(library.load_state_dict_from_url(f"{base}/old.zip", progress=False))
        assert _listing(folder / "checkpoints") == ["old.zip", "old_weights.pth"]
    np.testing.assert_array_equal(results[1]["bias"].numpy(), results[0]["bias"].numpy())


def test_a_zip_entry_climbing_out_of_the_cache_is_refused_as_torch_refuses_it(served, hub_dirs, tmp_path):
    root, base = served
    with zipfile.ZipFile(root / "evil.zip", "w") as archive:
        archive.writestr("../../escaped.pth", b"x")
    errors = []
    for library in (torch.hub, hub):
        with pytest.raises(ValueError) as error, pytest.warns(FutureWarning):
            library.load_state_dict_from_url(f"{base}/evil.zip", progress=False)
        errors.append(str(error.value))
    assert errors[0] == errors[1] == "Archive entry contains directory traversal: ../../escaped.pth"
    assert not (tmp_path / "escaped.pth").exists()


class _MakesADirectory:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(served, hub_dirs, tmp_path):
    root, base = served
    target = tmp_path / "made_by_the_pickle"
    (root / "hostile.pth").write_bytes(_torch_checkpoint({"weight": torch.zeros(2), "x": _MakesADirectory(str(target))}))
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        hub.load_state_dict_from_url(f"{base}/hostile.pth", progress=False)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):  # torch, asked for the same
        torch.hub.load_state_dict_from_url(f"{base}/hostile.pth", progress=False, weights_only=True)
    assert not target.exists()


def test_safetensors_from_a_url_load_too(served, hub_dirs):
    root, base = served
    chainrule.save({"weight": chainrule.ones(2, 3)}, str(root / "w.safetensors"))
    loaded = hub.load_state_dict_from_url(f"{base}/w.safetensors", progress=False)
    np.testing.assert_array_equal(loaded["weight"].numpy(), np.ones((2, 3), np.float32))


# --- hubconf.py ---

@pytest.fixture
def hubconf_dir(tmp_path):
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "hubconf.py").write_text(HUBCONF)
    (folder / "hub_sibling_sizes.py").write_text("IN_FEATURES, OUT_FEATURES = 3, 2\n")
    yield folder
    sys.modules.pop("hub_sibling_sizes", None)  # the sibling hubconf imported by plain name


@pytest.fixture
def chainrule_as_torch(monkeypatch):
    """What a hubconf.py's ``import torch`` finds when chainrule runs it."""
    def install():
        monkeypatch.setitem(sys.modules, "torch", chainrule)
        monkeypatch.setitem(sys.modules, "torch.nn", chainrule.nn)
        monkeypatch.setitem(sys.modules, "torch.hub", hub)
    return install


def test_hub_load_list_and_help_from_a_local_directory_as_torch(served, hub_dirs, hubconf_dir, chainrule_as_torch):
    root, base = served
    data = _torch_checkpoint(_state())
    (root / "linear.pth").write_bytes(data)
    url = f"{base}/linear.pth"
    expected = torch.hub.load(str(hubconf_dir), "linear", url, source="local", progress=False)
    chainrule_as_torch()
    layer = hub.load(str(hubconf_dir), "linear", url, source="local", progress=False)
    assert isinstance(layer, chainrule.nn.Linear)
    np.testing.assert_array_equal(layer.weight.detach().numpy(), expected.weight.detach().numpy())
    np.testing.assert_array_equal(layer.bias.detach().numpy(), expected.bias.detach().numpy())
    assert hub.load(str(hubconf_dir), "sizes", source="LOCAL") == (3, 2)
    assert hub.load(str(hubconf_dir), "linear", bias=False, source="local").bias is None
    # torch.hub.list/help take no source= (they always fetch from GitHub); the GitHub test compares them
    assert hub.list(str(hubconf_dir), source="local") == ["linear", "sizes"]
    assert hub.help(str(hubconf_dir), "linear", source="local") == (
        "A linear layer 3 -> 2; with ``url``, its weights are that checkpoint's.")
    assert str(hubconf_dir) not in sys.path  # put there only while hubconf runs


def _errors_of_both(call):
    """Both libraries' (exception type, message), each hub directory written as <hub>."""
    raised = []
    for library in (torch.hub, hub):
        with pytest.raises(Exception) as error:
            call(library)
        raised.append((type(error.value), str(error.value).replace(library.get_dir(), "<hub>")))
    assert raised[0] == raised[1]
    return raised[1]


def test_hub_load_errors_are_torchs(hubconf_dir, chainrule_as_torch):
    chainrule_as_torch()  # torch.hub already imported; hubconf's own `import torch` now finds chainrule
    directory = str(hubconf_dir)
    assert _errors_of_both(lambda library: library.load(directory, "resnet18", source="local")) == (
        RuntimeError, "Cannot find callable resnet18 in hubconf")
    assert _errors_of_both(lambda library: library.load(directory, "NOT_CALLABLE", source="local")) == (
        RuntimeError, "Cannot find callable NOT_CALLABLE in hubconf")
    assert _errors_of_both(lambda library: library.load(directory, None, source="local")) == (
        ValueError, "Invalid input: model should be a string of function name")
    assert _errors_of_both(lambda library: library.load(directory, "linear", source="gitlab")) == (
        ValueError, 'Unknown source: "gitlab". Allowed values: "github" | "local".')
    empty = hubconf_dir / "empty"
    empty.mkdir()
    kind, _ = _errors_of_both(lambda library: library.load(str(empty), "linear", source="local"))
    assert kind is FileNotFoundError
    (hubconf_dir / "hubconf.py").write_text(HUBCONF.replace('["numpy"]', '["numpy", "no_such_pkg_a", "no_such_pkg_b"]'))
    assert _errors_of_both(lambda library: library.load(directory, "linear", source="local")) == (
        RuntimeError, "Missing dependencies: no_such_pkg_a, no_such_pkg_b")


# --- source='github', with GitHub's zip served locally ---

def _github_zip(root, hubconf_text: str) -> None:
    with zipfile.ZipFile(root / "zipball.zip", "w") as archive:
        archive.writestr("someone-tinyhub-0123abc/", b"")
        archive.writestr("someone-tinyhub-0123abc/hubconf.py", hubconf_text)
        archive.writestr("someone-tinyhub-0123abc/hub_sibling_sizes.py", "IN_FEATURES, OUT_FEATURES = 3, 2\n")


def test_github_source_downloads_the_branch_zip_into_the_hub_dir_as_torch(
        served, hub_dirs, monkeypatch, capsys, chainrule_as_torch):
    root, base = served
    _github_zip(root, HUBCONF)
    requested = []

    def archive_link(owner, name, ref):
        requested.append((owner, name, ref))
        return f"{base}/zipball.zip"

    monkeypatch.setattr(torch.hub, "_git_archive_link", archive_link)
    monkeypatch.setattr(hub, "_git_archive_link", archive_link)
    try:
        assert torch.hub.list("someone/tinyhub:dev/x", trust_repo=True, skip_validation=True) == ["linear", "sizes"]
        torch_out = capsys.readouterr()
        chainrule_as_torch()
        assert hub.list("someone/tinyhub:dev/x", trust_repo=True, skip_validation=True) == ["linear", "sizes"]
        chainrule_out = capsys.readouterr()
        assert requested == [("someone", "tinyhub", "dev/x")] * 2
        torch_dir, chainrule_dir = hub_dirs
        assert chainrule_out.out == torch_out.out.replace(str(torch_dir), str(chainrule_dir))
        assert chainrule_out.out == f'Downloading: "{base}/zipball.zip" to {chainrule_dir / "dev_x.zip"}\n'
        assert _listing(chainrule_dir) == _listing(torch_dir) == ["someone_tinyhub_dev_x", "trusted_list"]
        assert (chainrule_dir / "trusted_list").read_text() == (torch_dir / "trusted_list").read_text() == (
            "someone_tinyhub\n")
        assert _listing(chainrule_dir / "someone_tinyhub_dev_x") == ["hub_sibling_sizes.py", "hubconf.py"]
        # the second time the cache answers, and says so on stderr
        assert hub.load("someone/tinyhub:dev/x", "sizes", skip_validation=True) == (3, 2)
        assert capsys.readouterr().err == f"Using cache found in {chainrule_dir / 'someone_tinyhub_dev_x'}\n"
        assert len(requested) == 2
        hub.load("someone/tinyhub:dev/x", "sizes", skip_validation=True, force_reload=True)
        assert len(requested) == 3
    finally:
        sys.modules.pop("hub_sibling_sizes", None)


def test_an_untrusted_github_repo_asks_first_with_torchs_answers(served, hub_dirs, monkeypatch):
    root, base = served
    _github_zip(root, HUBCONF)
    monkeypatch.setattr(torch.hub, "_git_archive_link", lambda owner, name, ref: f"{base}/zipball.zip")
    monkeypatch.setattr(hub, "_git_archive_link", lambda owner, name, ref: f"{base}/zipball.zip")
    for answer, expected in (("n", (Exception, "Untrusted repository.")), ("", (Exception, "Untrusted repository.")),
                             ("maybe", (ValueError, "Unrecognized response maybe."))):
        monkeypatch.setattr("builtins.input", lambda prompt, answer=answer: answer)
        assert _errors_of_both(lambda library: library.load("someone/tinyhub:main", "sizes",
                                                            skip_validation=True)) == expected
    for folder in hub_dirs:
        assert _listing(folder) == ["trusted_list"] and (folder / "trusted_list").read_text() == ""
    monkeypatch.setattr("builtins.input", lambda prompt: "Yes")
    try:
        for library, folder in zip((torch.hub, hub), hub_dirs):
            assert library.load("someone/tinyhub:main", "sizes", skip_validation=True) == (3, 2)
            assert (folder / "trusted_list").read_text() == "someone_tinyhub\n"
    finally:
        sys.modules.pop("hub_sibling_sizes", None)


def _github_api_pages(pages_of_branches, pages_of_tags):
    """A stand-in for GitHub's API as hub's _read_url sees it; returns (read_url, urls asked)."""
    asked = []

    def read_url(request, headers=None):  # torch passes a Request, chainrule the URL and headers
        url = getattr(request, "full_url", request)
        asked.append(url)
        pages = pages_of_branches if "/branches?" in url else pages_of_tags
        page = int(url.rsplit("page=", 1)[1])
        return json.dumps(pages[page - 1] if page <= len(pages) else [])
    return read_url, asked


def test_validation_looks_for_the_ref_among_branches_and_tags_as_torch(served, hub_dirs, monkeypatch):
    root, base = served
    _github_zip(root, "dependencies = []\n\ndef answer():\n    return 42\n")
    for library in (torch.hub, hub):
        monkeypatch.setattr(library, "_git_archive_link", lambda owner, name, ref: f"{base}/zipball.zip")
    branches = [[{"name": "main", "commit": {"sha": "1111"}}]]
    tags = [[{"name": "v1", "commit": {"sha": "2222"}}], [{"name": "v2", "commit": {"sha": "abcdef0"}}]]
    asked_by = []
    for library in (torch.hub, hub):
        read_url, asked = _github_api_pages(branches, tags)
        monkeypatch.setattr(library, "_read_url", read_url)
        assert library.load("someone/tinyhub:abcdef", "answer", trust_repo=True) == 42  # a commit of tag v2
        asked_by.append(asked)
    assert asked_by[0] == asked_by[1] == [
        "https://api.github.com/repos/someone/tinyhub/branches?per_page=100&page=1",
        "https://api.github.com/repos/someone/tinyhub/branches?per_page=100&page=2",
        "https://api.github.com/repos/someone/tinyhub/tags?per_page=100&page=1",
        "https://api.github.com/repos/someone/tinyhub/tags?per_page=100&page=2"]
    for library in (torch.hub, hub):
        monkeypatch.setattr(library, "_read_url", _github_api_pages(branches, tags)[0])
    assert _errors_of_both(lambda library: library.load("someone/tinyhub:feature", "answer", trust_repo=True)) == (
        ValueError, "Cannot find feature in https://github.com/someone/tinyhub. If it's a commit from a forked repo, "
                    "please call hub.load() with forked repo directly.")


def test_without_a_ref_main_is_tried_then_master_as_torch(served, hub_dirs, monkeypatch):
    root, base = served
    _github_zip(root, "def answer():\n    return 42\n")
    # torch.hub calls urllib's urlopen, bound at its import; chainrule.hub its own _urlopen
    for library, opener in ((torch.hub, "urlopen"), (hub, "_urlopen")):
        real_urlopen = getattr(library, opener)

        def no_main_branch(url, *args, real_urlopen=real_urlopen, **kwargs):
            if isinstance(url, str) and url.endswith("/tree/main/"):
                raise HTTPError(url, 404, "Not Found", None, None)
            return real_urlopen(url, *args, **kwargs)

        monkeypatch.setattr(library, opener, no_main_branch)
        monkeypatch.setattr(library, "_git_archive_link", lambda owner, name, ref: f"{base}/zipball.zip")
    for library, folder in zip((torch.hub, hub), hub_dirs):
        assert library.load("someone/tinyhub", "answer", trust_repo=True, skip_validation=True) == 42
        assert _listing(folder) == ["someone_tinyhub_master", "trusted_list"]


def test_a_github_repo_without_a_ref_offline_and_uncached_raises_torchs_error(hub_dirs, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "urlopen", offline)
    monkeypatch.setattr(hub, "_urlopen", offline)
    assert _errors_of_both(lambda library: library.load("someone/tinyhub", "sizes", trust_repo=True)) == (
        RuntimeError, "It looks like there is no internet connection and the repo could not be found in the cache "
                      "(<hub>)")


def test_a_github_zip_with_an_entry_outside_the_hub_dir_is_refused_as_torch_refuses_it(served, hub_dirs, monkeypatch,
                                                                                       tmp_path):
    root, base = served
    with zipfile.ZipFile(root / "zipball.zip", "w") as archive:
        archive.writestr("someone-tinyhub-0123abc/hubconf.py", "dependencies = []\n")
        archive.writestr("someone-tinyhub-0123abc/../../../escaped.py", "print('escaped')\n")
    monkeypatch.setattr(torch.hub, "_git_archive_link", lambda owner, name, ref: f"{base}/zipball.zip")
    monkeypatch.setattr(hub, "_git_archive_link", lambda owner, name, ref: f"{base}/zipball.zip")
    assert _errors_of_both(lambda library: library.list("someone/tinyhub:main", trust_repo=True,
                                                        skip_validation=True)) == (
        ValueError, "Archive entry contains directory traversal: someone-tinyhub-0123abc/../../../escaped.py")
    assert not (tmp_path / "escaped.py").exists()
    # torch extracts member by member and so has written hubconf.py before it stops; chainrule checks first
    assert "someone-tinyhub-0123abc" in _listing(hub_dirs[0])
    assert "someone-tinyhub-0123abc" not in _listing(hub_dirs[1])
