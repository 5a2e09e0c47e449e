"""ORPO (Hong et al. 2024), monolithic preference optimisation without a reference model, on a tiny causal LM,
written twice as the two public implementations write it: xfactlab/orpo's ``ORPOTrainer.compute_loss`` and
TRL's ``ORPOTrainer``.

xfactlab's route runs chosen and rejected through the model separately (HF-style ``model(input_ids=...,
attention_mask=..., labels=...)`` returning an output with ``.loss`` and ``.logits``, labels with the padding
set to -100 by ``labels[labels == pad] = -100``), takes per-sequence average log-probabilities in
``compute_logps`` with the response mask ``chosen_attention_mask[:, :-1] - prompt_attention_mask[:, 1:]``
(``torch.gather`` of ``logits[:, :-1, :].log_softmax(-1)`` at ``mask * chosen_inputs[:, 1:]``, a bfloat16 mask,
a float64 average), then ``log_odds = (pos_prob - neg_prob) - (torch.log(1 - torch.exp(pos_prob)) -
torch.log(1 - torch.exp(neg_prob)))``, ``torch.log(torch.nn.functional.sigmoid(log_odds))`` and a
bfloat16 loss. TRL's route pads both to one length by ``pad_to_length`` (``torch.cat`` with ``pad_value *
torch.ones(*pad_size)``), runs one ``concatenated_forward`` split by ``len_chosen``, ``get_batch_logps``
(labels shifted and ``.clone()``-d, ``loss_mask = labels != -100``, ``torch.where(labels == -100, 0, labels)``,
``torch.gather(logits.log_softmax(-1), dim=2, index=labels.unsqueeze(2)).squeeze(2)``, averaged under the mask),
``odds_ratio_loss`` with ``torch.log1p(-torch.exp(...))`` and ``F.logsigmoid``, the chosen NLL by
``nn.CrossEntropyLoss`` on ``view(-1, ...)``, and the loss ``policy_nll_loss - losses.mean()`` with TRL's
metrics (rewards ``beta * logps.detach()``, accuracies, margins, ``log_odds_ratio``, ``log_odds_chosen``).

The data: prompts of 3 to 5 tokens; a chosen response is the prompt sorted, a rejected one the same with two
tokens swapped. A copy of the initial model is trained with TRL's loss (AdamW, ``clip_grad_norm_``), and
another copy by SFT alone (the NLL term) for comparison.

Checked: the two routes' odds-ratio terms agree; the gradient of the log-odds term by ``backward()`` equals
``torch.func.grad`` over ``torch.func.functional_call`` of the same function; the held-out log-odds of
chosen over rejected, the reward margin and the reward accuracy rise under ORPO, past SFT alone's.
"""

import copy
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
rng = np.random.default_rng(seed)

PAD = EOS = 0  # tokenizer.pad_token = tokenizer.eos_token
VOCAB, MAX_PROMPT, MAX_LEN = 12, 5, 12
LABEL_PAD_TOKEN_ID = -100
ORPO_BETA = 1.0  # TRL's beta, the paper's lambda


# ----------------------------------------------------------------------------------- data
def make_pair():
    prompt = [int(t) for t in rng.integers(1, VOCAB, size=int(rng.integers(3, MAX_PROMPT + 1)))]
    chosen = sorted(prompt)
    rejected = list(chosen)
    i, j = rng.choice(len(rejected), size=2, replace=False)
    while rejected[i] == rejected[j]:
        rejected[i] = int(rng.integers(1, VOCAB))
    rejected[i], rejected[j] = rejected[j], rejected[i]
    return prompt, chosen, rejected


def tokenize(prompt, response, with_eos):
    ids = prompt + response + ([EOS] if with_eos else [])
    return ids + [PAD] * (MAX_LEN - len(ids)), [1] * len(ids) + [0] * (MAX_LEN - len(ids))


def xfactlab_batch(pairs):
    """xfactlab/orpo's collated inputs: the prompt's attention mask and each response's, all padded to one length."""
    batch = {"attention_mask": [], "positive_input_ids": [], "positive_attention_mask": [],
             "negative_input_ids": [], "negative_attention_mask": []}
    for prompt, chosen, rejected in pairs:
        batch["attention_mask"].append([1] * len(prompt) + [0] * (MAX_LEN - len(prompt)))
        for key, response in (("positive", chosen), ("negative", rejected)):
            ids, mask = tokenize(prompt, response, with_eos=False)
            batch[f"{key}_input_ids"].append(ids)
            batch[f"{key}_attention_mask"].append(mask)
    return {k: torch.tensor(v) for k, v in batch.items()}


def trl_batch(pairs):
    """TRL's tokenized rows: the response ends in EOS, the labels are -100 over the prompt and the padding."""
    batch = {}
    for key, index in (("chosen", 1), ("rejected", 2)):
        ids, masks, labels = [], [], []
        for pair in pairs:
            prompt, response = pair[0], pair[index]
            row, mask = tokenize(prompt, response, with_eos=True)
            n = len(prompt) + len(response) + 1
            ids.append(row[:n])
            masks.append(mask[:n])
            labels.append([LABEL_PAD_TOKEN_ID] * len(prompt) + response + [EOS])
        width = max(len(r) for r in ids)
        batch[f"{key}_input_ids"] = torch.tensor([r + [PAD] * (width - len(r)) for r in ids])
        batch[f"{key}_attention_mask"] = torch.tensor([m + [0] * (width - len(m)) for m in masks])
        batch[f"{key}_labels"] = torch.tensor([lab + [LABEL_PAD_TOKEN_ID] * (width - len(lab)) for lab in labels])
    return batch


train_pairs = [make_pair() for _ in range(256)]
eval_pairs = [make_pair() for _ in range(96)]
print(f"pairs: {len(train_pairs)} train, {len(eval_pairs)} eval, vocab {VOCAB}")


# ----------------------------------------------------------------------------------- model
@dataclass
class CausalLMOutput:
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class TinyCausalLM(nn.Module):
    def __init__(self, d_model=32, n_head=4, n_layer=2):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, d_model)
        self.wpe = nn.Embedding(MAX_LEN, d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_head, dim_feedforward=64, dropout=0.0, batch_first=True, norm_first=True)
        self.h = nn.TransformerEncoder(layer, n_layer, enable_nested_tensor=False)
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, VOCAB, bias=False)
        self.register_buffer("causal", torch.triu(torch.ones(MAX_LEN, MAX_LEN, dtype=torch.bool), diagonal=1), persistent=False)

    def forward(self, input_ids, attention_mask=None, labels=None, use_cache=False):
        t = input_ids.size(1)
        x = self.wte(input_ids) + self.wpe(torch.arange(t, device=input_ids.device))
        padding = None if attention_mask is None else attention_mask == 0
        x = self.h(x, mask=self.causal[:t, :t], src_key_padding_mask=padding)
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if labels is not None:
            shift_logits = logits[..., :-1, :].contiguous()
            shift_labels = labels[..., 1:].contiguous()
            loss = nn.CrossEntropyLoss()(shift_logits.view(-1, VOCAB), shift_labels.view(-1))
        return CausalLMOutput(loss=loss, logits=logits)


# ----------------------------------------------------------------------------------- xfactlab/orpo
class XfactlabORPO:
    def __init__(self, model, alpha=0.1, pad=PAD):
        self.model = model
        self.alpha = alpha
        self.pad = pad

    def compute_logps(self, prompt_attention_mask, chosen_inputs, chosen_attention_mask, logits):
        mask = chosen_attention_mask[:, :-1] - prompt_attention_mask[:, 1:]
        per_token_logps = torch.gather(logits[:, :-1, :].log_softmax(-1), dim=2,
                                       index=(mask * chosen_inputs[:, 1:]).unsqueeze(2)).squeeze(2)
        return torch.mul(per_token_logps, mask.to(dtype=torch.bfloat16)).sum(dim=1).to(dtype=torch.float64) / mask.sum(dim=1).to(dtype=torch.float64)

    def compute_loss(self, model, inputs):
        neg_labels = inputs["negative_input_ids"].clone()
        pos_labels = inputs["positive_input_ids"].clone()
        neg_labels[neg_labels == self.pad] = -100
        pos_labels[pos_labels == self.pad] = -100
        outputs_neg = model(**{"input_ids": inputs["negative_input_ids"], "attention_mask": inputs["negative_attention_mask"], "labels": neg_labels})
        outputs_pos = model(**{"input_ids": inputs["positive_input_ids"], "attention_mask": inputs["positive_attention_mask"], "labels": pos_labels})
        pos_loss = outputs_pos.loss
        pos_prob = self.compute_logps(prompt_attention_mask=inputs["attention_mask"], chosen_inputs=inputs["positive_input_ids"],
                                      chosen_attention_mask=inputs["positive_attention_mask"], logits=outputs_pos.logits)
        neg_prob = self.compute_logps(prompt_attention_mask=inputs["attention_mask"], chosen_inputs=inputs["negative_input_ids"],
                                      chosen_attention_mask=inputs["negative_attention_mask"], logits=outputs_neg.logits)
        log_odds = (pos_prob - neg_prob) - (torch.log(1 - torch.exp(pos_prob)) - torch.log(1 - torch.exp(neg_prob)))
        sig_ratio = torch.nn.functional.sigmoid(log_odds)
        ratio = torch.log(sig_ratio)
        loss = torch.mean(pos_loss - self.alpha * ratio).to(dtype=torch.bfloat16)
        return loss, ratio, log_odds


# ----------------------------------------------------------------------------------- TRL
def pad_to_length(tensor, length, pad_value, dim=-1):
    if tensor.size(dim) >= length:
        return tensor
    else:
        pad_size = list(tensor.shape)
        pad_size[dim] = length - tensor.size(dim)
        return torch.cat([tensor, pad_value * torch.ones(*pad_size, dtype=tensor.dtype, device=tensor.device)], dim=dim)


class TRLORPOTrainer:
    def __init__(self, model, beta=0.1, padding_value=PAD, label_pad_token_id=LABEL_PAD_TOKEN_ID):
        self.model = model
        self.beta = beta
        self.padding_value = padding_value
        self.label_pad_token_id = label_pad_token_id

    def concatenated_inputs(self, batch):
        concatenated_batch = {}
        max_length = max(batch["chosen_input_ids"].shape[1], batch["rejected_input_ids"].shape[1])
        for k in batch:
            if k.startswith("chosen") and isinstance(batch[k], torch.Tensor):
                if "labels" in k:
                    pad_value = self.label_pad_token_id
                elif k.endswith("_input_ids"):
                    pad_value = self.padding_value
                elif k.endswith("_attention_mask"):
                    pad_value = 0
                concatenated_key = k.replace("chosen", "concatenated")
                concatenated_batch[concatenated_key] = pad_to_length(batch[k], max_length, pad_value=pad_value)
        for k in batch:
            if k.startswith("rejected") and isinstance(batch[k], torch.Tensor):
                if "labels" in k:
                    pad_value = self.label_pad_token_id
                elif k.endswith("_input_ids"):
                    pad_value = self.padding_value
                elif k.endswith("_attention_mask"):
                    pad_value = 0
                concatenated_key = k.replace("rejected", "concatenated")
                concatenated_batch[concatenated_key] = torch.cat(
                    (concatenated_batch[concatenated_key], pad_to_length(batch[k], max_length, pad_value=pad_value)), dim=0
                )
        return concatenated_batch

    @staticmethod
    def get_batch_logps(logits, labels, average_log_prob=False, label_pad_token_id=-100):
        if logits.shape[:-1] != labels.shape:
            raise ValueError("Logits (batch and sequence length dim) and labels must have the same shape.")
        labels = labels[:, 1:].clone()
        logits = logits[:, :-1, :]
        loss_mask = labels != label_pad_token_id
        # dummy token; we'll ignore the losses on these tokens later
        labels = torch.where(labels == label_pad_token_id, 0, labels)
        per_token_logps = torch.gather(logits.log_softmax(-1), dim=2, index=labels.unsqueeze(2)).squeeze(2)
        if average_log_prob:
            return (per_token_logps * loss_mask).sum(-1) / loss_mask.sum(-1)
        else:
            return (per_token_logps * loss_mask).sum(-1)

    def concatenated_forward(self, model, batch):
        concatenated_batch = self.concatenated_inputs(batch)
        len_chosen = batch["chosen_labels"].shape[0]
        outputs = model(concatenated_batch["concatenated_input_ids"], attention_mask=concatenated_batch["concatenated_attention_mask"], use_cache=False)
        all_logits = outputs.logits

        def cross_entropy_loss(logits, labels):
            # Shift so that tokens < n predict n
            logits = logits[..., :-1, :].contiguous()
            labels = labels[..., 1:].contiguous()
            loss_fct = nn.CrossEntropyLoss()
            logits = logits.view(-1, logits.shape[-1])
            labels = labels.view(-1)
            labels = labels.to(logits.device)
            return loss_fct(logits, labels)

        labels = concatenated_batch["concatenated_labels"].clone()
        chosen_nll_loss = cross_entropy_loss(all_logits[:len_chosen], labels[:len_chosen])
        all_logps = self.get_batch_logps(all_logits, concatenated_batch["concatenated_labels"], average_log_prob=True,
                                         label_pad_token_id=self.label_pad_token_id)
        chosen_logps = all_logps[:len_chosen]
        rejected_logps = all_logps[len_chosen:]
        chosen_logits = all_logits[:len_chosen]
        rejected_logits = all_logits[len_chosen:]
        return (chosen_logps, rejected_logps, chosen_logits, rejected_logits, chosen_nll_loss)

    def odds_ratio_loss(self, policy_chosen_logps, policy_rejected_logps):
        # Derived from Eqs. (4) and (7) of the paper by log identities and exp(log(P(y|x)) = P(y|x)
        log_odds = (policy_chosen_logps - policy_rejected_logps) - (
            torch.log1p(-torch.exp(policy_chosen_logps)) - torch.log1p(-torch.exp(policy_rejected_logps))
        )
        ratio = F.logsigmoid(log_odds)
        losses = self.beta * ratio
        chosen_rewards = self.beta * (policy_chosen_logps).detach()
        rejected_rewards = self.beta * (policy_rejected_logps).detach()
        return losses, chosen_rewards, rejected_rewards, torch.mean(ratio), torch.mean(log_odds)

    def get_batch_loss_metrics(self, model, batch, train_eval="train", nll_only=False):
        metrics = {}
        forward_output = self.concatenated_forward(model, batch)
        (policy_chosen_logps, policy_rejected_logps, policy_chosen_logits, policy_rejected_logits, policy_nll_loss) = forward_output[:5]
        losses, chosen_rewards, rejected_rewards, log_odds_ratio, log_odds_chosen = self.odds_ratio_loss(
            policy_chosen_logps, policy_rejected_logps
        )
        # full ORPO loss
        loss = policy_nll_loss if nll_only else policy_nll_loss - losses.mean()
        reward_accuracies = (chosen_rewards > rejected_rewards).float()
        prefix = "eval_" if train_eval == "eval" else ""
        metrics[f"{prefix}rewards/chosen"] = chosen_rewards.mean()
        metrics[f"{prefix}rewards/rejected"] = rejected_rewards.mean()
        metrics[f"{prefix}rewards/accuracies"] = reward_accuracies.mean()
        metrics[f"{prefix}rewards/margins"] = (chosen_rewards - rejected_rewards).mean()
        metrics[f"{prefix}logps/rejected"] = policy_rejected_logps.detach().mean()
        metrics[f"{prefix}logps/chosen"] = policy_chosen_logps.detach().mean()
        metrics[f"{prefix}logits/rejected"] = policy_rejected_logits.detach().mean()
        metrics[f"{prefix}logits/chosen"] = policy_chosen_logits.detach().mean()
        metrics[f"{prefix}nll_loss"] = policy_nll_loss.detach().mean()
        metrics[f"{prefix}log_odds_ratio"] = log_odds_ratio
        metrics[f"{prefix}log_odds_chosen"] = log_odds_chosen
        return loss, metrics


# ----------------------------------------------------------------------------------- two routes, one term
initial = TinyCausalLM()
probe_pairs = train_pairs[:16]
_, ratio_x, log_odds_x = XfactlabORPO(initial).compute_loss(initial, xfactlab_batch(probe_pairs))
trl = TRLORPOTrainer(initial, beta=0.1)
lp_w, lp_l = trl.concatenated_forward(initial, trl_batch(probe_pairs))[:2]
ratio_t = trl.odds_ratio_loss(lp_w, lp_l)[0] / trl.beta
routes_gap = (ratio_x.float() - ratio_t).abs().max().item()
print(f"xfactlab vs TRL odds-ratio term: dtypes {ratio_x.dtype} / {ratio_t.dtype}, max gap {routes_gap:.2e}")


def log_odds_term(params, batch):
    """TRL's odds-ratio term alone, the mean log sigmoid of the log-odds, as a function of the parameters."""
    def model_fn(input_ids, attention_mask=None, use_cache=False):
        return torch.func.functional_call(initial, params, (input_ids,), {"attention_mask": attention_mask})

    chosen_logps, rejected_logps = trl.concatenated_forward(model_fn, batch)[:2]
    return trl.odds_ratio_loss(chosen_logps, rejected_logps)[3]


batch = trl_batch(probe_pairs)
params = {k: v.detach() for k, v in initial.named_parameters()}
func_grads = torch.func.grad(log_odds_term)(params, batch)
initial.zero_grad()
log_odds_term(dict(initial.named_parameters()), batch).backward()
grad_gap = max((func_grads[k] - p.grad).abs().max().item() for k, p in initial.named_parameters())
grad_scale = max(p.grad.abs().max().item() for p in initial.parameters())
print(f"log-odds term gradient: backward vs torch.func.grad max gap {grad_gap:.2e} (scale {grad_scale:.2e})")
initial.zero_grad(set_to_none=True)


# ----------------------------------------------------------------------------------- training
def evaluate(model):
    model.eval()
    with torch.no_grad():
        _, metrics = TRLORPOTrainer(model, beta=ORPO_BETA).get_batch_loss_metrics(model, trl_batch(eval_pairs), train_eval="eval")
    model.train()
    return {k: v.item() for k, v in metrics.items()}


def train(model, nll_only, steps=150, batch_size=32):
    trainer = TRLORPOTrainer(model, beta=ORPO_BETA)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    order = np.random.default_rng(seed + 1)
    for step in range(steps):
        idx = order.choice(len(train_pairs), size=batch_size, replace=False)
        loss, metrics = trainer.get_batch_loss_metrics(model, trl_batch([train_pairs[i] for i in idx]), nll_only=nll_only)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"{'sft ' if nll_only else 'orpo'} step {step:3d} loss {loss.item():.4f} nll {metrics['nll_loss'].item():.4f} "
                  f"log_odds_chosen {metrics['log_odds_chosen'].item():.4f} margin {metrics['rewards/margins'].item():.4f}")
    return evaluate(model)


before = evaluate(initial)
print(f"initial: log_odds_chosen {before['eval_log_odds_chosen']:.4f} margin {before['eval_rewards/margins']:.4f} "
      f"accuracy {before['eval_rewards/accuracies']:.4f}")
orpo = train(copy.deepcopy(initial), nll_only=False)
sft = train(copy.deepcopy(initial), nll_only=True)
for name, m in (("orpo", orpo), ("sft", sft)):
    print(f"{name}: chosen logps {m['eval_logps/chosen']:.4f} rejected logps {m['eval_logps/rejected']:.4f} "
          f"log_odds_chosen {m['eval_log_odds_chosen']:.4f} margin {m['eval_rewards/margins']:.4f} accuracy {m['eval_rewards/accuracies']:.4f}")
margin_grew = orpo["eval_rewards/margins"] > before["eval_rewards/margins"]
beats_sft = orpo["eval_log_odds_chosen"] > sft["eval_log_odds_chosen"]
print(f"margin grew: {margin_grew}, ORPO log-odds above SFT's: {beats_sft}")

print(f"FINAL routes_agree={int(routes_gap < 1e-5)} grad_agree={int(grad_gap <= 1e-5 * max(grad_scale, 1e-3))} "
      f"orpo_log_odds={orpo['eval_log_odds_chosen']:.4f} sft_log_odds={sft['eval_log_odds_chosen']:.4f} "
      f"orpo_margin={orpo['eval_rewards/margins']:.4f} orpo_acc={orpo['eval_rewards/accuracies']:.4f} "
      f"orpo_nll={orpo['eval_nll_loss']:.4f} margin_grew={int(margin_grew)} beats_sft={int(beats_sft)}")
