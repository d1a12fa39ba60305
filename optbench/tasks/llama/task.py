"""LLaMA language-model pre-training: the GaLore LLaMA/C4 benchmark and small stand-ins for it.

The benchmark (docs/references.md §1; jiaweizzhao/GaLore ``torchrun_main.py``): C4 ``en`` streamed
and buffer-shuffled with seed 42, t5-base tokens, each document truncated or padded to 256 tokens,
512 sequences per step, bf16. The recipe's training length and schedule belong
to the runner config, not to this task: steps 10K / 20K / 60K / 100K / 150K for llama60m /
llama130m / llama350m / llama1b / llama7b, linear warmup over the first 10% of steps then cosine
decay to 10% of the peak lr, weight decay 0, evaluation every 1000 steps.

Losses are next-token cross entropy over the non-pad targets; a step batch's loss is their
mean, whatever the micro-batch size (``loss_weight`` is the number of targets). ``evaluate``
returns the token-weighted mean over a fixed held-out set of ``eval_tokens`` targets and its
exp as ``eval/ppl``; the GaLore script instead averages per-batch means and divides by
(batches + 1), which is not a perplexity. For synthetic data it also reports
``eval/optimal_loss``, the exact best achievable loss.

The work (``tokens`` on every metrics line, ``perf/tokens_per_second``, ``train.tokens``) counts
those targets too, never padding: a full row of ``seq_len`` tokens has ``seq_len - 1``, so the
recipe's step holds at most 512 × 255 = 130,560, and fewer, varying from step to step, for
documents shorter than a row. (GaLore's ``tokens_seen`` counts the non-pad inputs, one more per
row.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from optbench.contract import EVAL_LOSS, ParamRole, Task, share
from optbench.errors import OptbenchError
from optbench.tasks.llama.data import (
    IGNORE_INDEX,
    LMData,
    StepStream,
    SyntheticSpec,
    TextSpec,
    TokenBatch,
    check_vocab,
    parse_data_config,
    token_batch,
)
from optbench.tasks.llama.model import SIZES, Llama, LlamaConfig
from optbench.tasks.llama.synthetic import SyntheticData
from optbench.tasks.llama.text import TextData

GALORE_VOCAB = 32000  # t5-base without its 100 sentinel tokens (docs/references.md §1)
_DIMS = ("hidden", "intermediate", "heads", "layers")
_NOT_PREPARED = "LlamaTask.prepare() must run before the data is used"


def target_loss_sum(
    model: nn.Module, input_ids: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Summed next-token cross entropy (fp32) over the targets: labels shifted left by one."""
    logits = model(input_ids)
    targets = F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
    return F.cross_entropy(
        logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
    )


class LlamaTask(Task):
    """A LLaMA decoder trained on ``data`` (see ``configs/task/llama*.yaml``).

    Model: ``size`` (llama60m ... llama7b) or explicit ``hidden``/``intermediate``/``heads``/
    ``layers``; explicit values override the size's. ``max_seq_len`` defaults to ``seq_len``.
    Batches: ``sequences_per_step`` sequences of ``seq_len`` tokens per step, in micro-batches of
    ``micro_batch`` (default: all of them). ``data`` is the mapping described in
    :mod:`optbench.tasks.llama.data` (default: synthetic). ``probe_sequences`` held-out
    sequences, chosen by seed, make the curvature-probe batches.
    """

    work_unit = "tokens"

    def __init__(
        self,
        size: str | None = None,
        vocab_size: int = GALORE_VOCAB,
        hidden: int | None = None,
        intermediate: int | None = None,
        heads: int | None = None,
        layers: int | None = None,
        max_seq_len: int | None = None,
        seq_len: int = 256,
        sequences_per_step: int = 512,
        micro_batch: int | None = None,
        data: Mapping[str, Any] | None = None,
        eval_tokens: int = 10_000_000,
        probe_sequences: int = 8,
    ) -> None:
        if size is not None and size not in SIZES:
            raise OptbenchError(f"task.size={size!r}; accepted: {', '.join(SIZES)} or null")
        given = {"hidden": hidden, "intermediate": intermediate, "heads": heads, "layers": layers}
        dims = {
            **(SIZES[size] if size else {}),
            **{k: v for k, v in given.items() if v is not None},
        }
        missing = [k for k in _DIMS if k not in dims]
        if missing:
            raise OptbenchError(
                f"task: set size ({', '.join(SIZES)}) or all of {', '.join(_DIMS)}; "
                f"missing {', '.join(missing)}"
            )
        micro_batch = sequences_per_step if micro_batch is None else micro_batch
        max_seq_len = seq_len if max_seq_len is None else max_seq_len
        ints = {
            **dims,
            "vocab_size": vocab_size,
            "max_seq_len": max_seq_len,
            "seq_len": seq_len,
            "sequences_per_step": sequences_per_step,
            "micro_batch": micro_batch,
            "eval_tokens": eval_tokens,
            "probe_sequences": probe_sequences,
        }
        for key, value in ints.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise OptbenchError(f"task.{key}={value!r}: expected a positive integer")
        _check_shapes(dims, seq_len, max_seq_len, sequences_per_step, micro_batch)
        self.config = LlamaConfig(vocab_size=vocab_size, max_seq_len=max_seq_len, **dims)
        self.seq_len, self.sequences_per_step = seq_len, sequences_per_step
        self.micro_batch, self.eval_tokens = micro_batch, eval_tokens
        self.probe_sequences = probe_sequences
        self.data_spec = parse_data_config(data)
        if self.data_spec.vocab_size is not None:
            check_vocab(
                self.data_spec.vocab_size, vocab_size, f"data source {self.data_spec.source}"
            )
        self._data: LMData | None = None
        self._eval: TokenBatch | None = None
        self._device = torch.device("cpu")

    # --- data ---

    def prepare(self, device: torch.device, dtype: torch.dtype) -> None:
        """Open the data and build the held-out set on ``device``. Token ids are integers, so
        ``dtype`` does not apply; the loss is computed in fp32 whatever the model's dtype."""
        self._device = torch.device(device)
        spec = self.data_spec
        if isinstance(spec, SyntheticSpec):
            self._data = SyntheticData(spec, self.seq_len, self.sequences_per_step)
        else:
            self._data = TextData(
                spec, self.seq_len, self.sequences_per_step, self.config.vocab_size
            )
        ids, lengths = self._data.eval_sequences(self.eval_tokens)
        self._eval = token_batch(ids, lengths, self._device)

    @property
    def data(self) -> LMData:
        if self._data is None:
            raise RuntimeError(_NOT_PREPARED)
        return self._data

    @property
    def eval_set(self) -> TokenBatch:
        """The held-out sequences, one batch on the device."""
        if self._eval is None:
            raise RuntimeError(_NOT_PREPARED)
        return self._eval

    @property
    def optimal_loss(self) -> float | None:
        """The exact best achievable mean loss (synthetic data only), else None."""
        return self.data.optimal_loss

    def train_stream(self, seed: int) -> StepStream:
        return StepStream(self.data.train_source(seed), self.micro_batch, self._device)

    def probe_batches(self, seed: int, size: int | None = None) -> list[TokenBatch]:
        """``size`` held-out sequences (default ``probe_sequences``) in micro-batches: keep it
        small, since a probe's memory is dominated by the logits (batch × seq × vocab)."""
        rows = self.eval_set.input_ids.shape[0]
        generator = torch.Generator().manual_seed(seed)
        chosen = torch.randperm(rows, generator=generator)[: size or self.probe_sequences]
        chosen = chosen.to(self._device)
        return [_rows(self.eval_set, part) for part in chosen.split(self.micro_batch)]

    # --- model and loss ---

    def build_model(self) -> Llama:
        return Llama(self.config)

    def param_roles(self, model: nn.Module) -> dict[str, ParamRole]:
        """``model`` is a :class:`Llama` from :meth:`build_model` (or a compiled wrapper of it)."""
        special = {
            id(model.embed.weight): ParamRole.EMBEDDING,
            id(model.head.weight): ParamRole.HEAD,
        }
        return {
            name: special.get(id(p), ParamRole.MATRIX if p.ndim == 2 else ParamRole.VECTOR)
            for name, p in model.named_parameters()
        }

    def loss(self, model: nn.Module, batch: TokenBatch) -> torch.Tensor:
        return target_loss_sum(model, batch.input_ids, batch.labels) / max(batch.n_targets, 1)

    def loss_weight(self, batch: TokenBatch) -> int:
        return batch.n_targets

    def shard(self, batch: TokenBatch, rank: int, world_size: int) -> TokenBatch:
        return _rows(batch, share(len(batch.input_ids), rank, world_size))

    def work(self, batch: TokenBatch) -> int:
        """The targets, which the loss averages over: padding is not work."""
        return batch.n_targets

    def work_per_step(self) -> int | None:
        """Targets per step where every step has the same: full rows (synthetic or packed data)
        have ``seq_len - 1`` each. None for unpacked text, whose documents vary in length."""
        if isinstance(self.data_spec, TextSpec) and not self.data_spec.pack:
            return None
        return (self.seq_len - 1) * self.sequences_per_step

    def flops_per_work(self) -> float:
        """Training FLOPs per target token, i.e. per position whose prediction enters the loss:
        6 per matmul weight (attention and MLP projections and the LM head; not the embedding,
        a lookup, nor norm gains), plus attention's 12·layers·hidden·seq_len (the PaLM paper's
        appendix B count, causal mask not discounted). ``perf/mfu`` thus counts useful FLOPs:
        not those spent on padding, nor on each row's last position."""
        cfg = self.config
        per_layer = 4 * cfg.hidden**2 + 3 * cfg.hidden * cfg.intermediate
        matmul_weights = cfg.layers * per_layer + cfg.vocab_size * cfg.hidden
        return 6 * matmul_weights + 12 * cfg.layers * cfg.hidden * self.seq_len

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        total = torch.zeros((), dtype=torch.float64, device=self._device)
        ids, labels = self.eval_set.input_ids, self.eval_set.labels
        for start in range(0, len(ids), self.micro_batch):
            part = slice(start, start + self.micro_batch)
            total += target_loss_sum(model, ids[part], labels[part]).double()
        loss = total.item() / self.eval_set.n_targets
        metrics = {EVAL_LOSS: loss, "eval/ppl": math.exp(loss) if loss < 700 else math.inf}
        if self.data.optimal_loss is not None:
            metrics["eval/optimal_loss"] = self.data.optimal_loss
        return metrics


def _rows(batch: TokenBatch, rows: torch.Tensor | slice) -> TokenBatch:
    """The batch of some rows of ``batch``."""
    labels = batch.labels[rows]
    return TokenBatch(batch.input_ids[rows], labels, int((labels[:, 1:] != IGNORE_INDEX).sum()))


def _check_shapes(
    dims: dict[str, int], seq_len: int, max_seq_len: int, sequences_per_step: int, micro_batch: int
) -> None:
    hidden, heads = dims["hidden"], dims["heads"]
    if hidden % heads or (hidden // heads) % 2:
        raise OptbenchError(
            f"task: hidden={hidden} must split into heads={heads} heads of an even size"
        )
    if seq_len < 2 or seq_len > max_seq_len:
        raise OptbenchError(f"task.seq_len={seq_len}: must be in [2, max_seq_len={max_seq_len}]")
    if sequences_per_step % micro_batch:
        raise OptbenchError(
            f"task.micro_batch={micro_batch} must divide sequences_per_step={sequences_per_step}"
        )
