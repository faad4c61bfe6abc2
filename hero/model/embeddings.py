"""Input embeddings: subtitle/query tokens, clip features at the cross-modal level, positions at the temporal level."""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hero.model.config import ModelConfig
from hero.model.dropout import Dropout
from hero.model.linear import Linear, cast_param, linear, pad_rows, padded_rows


def _data_parallel() -> bool:
    """True inside a multi-process job: DDP all-reduces dense gradient buckets, so lookups stay dense there."""
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class RowGradEmbedding(nn.Embedding):
    """`nn.Embedding` whose weight gradient is built from the rows a step looked up, not a zero-filled table.

    A 50k-row vocabulary table in a step that reads a few hundred rows: the dense backward allocates and
    zero-fills the whole [rows, D] gradient for every use, and autograd adds those tables up. Here each lookup's
    gradient is sparse (its rows), autograd concatenates them, and after backward they are added into a
    persistent dense buffer whose previously written rows were zeroed: the optimizer and gradient clipping see
    the same dense ``.grad`` as with `nn.Embedding` (equal up to summation order). A dense gradient reaching
    the same weight elsewhere (a decoder tied to it) simply makes ``.grad`` dense, as before. Inside a
    multi-process job the lookup stays dense (DDP reduces dense buckets).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__(num_embeddings, embedding_dim)
        self.row_grad = True
        """False: the plain dense gradient (the reference path of the benchmark)."""
        self._buffer: Tensor | None = None         # the lookups' gradient rows land here (then cleared row-wise)
        self._dense: Tensor | None = None          # a tied decoder's dense gradient (every row written: no zeroing)
        self._written: Tensor | None = None   # rows of the buffer that may be non-zero; None = all of them
        self._hooked: weakref.ref | None = None    # the weight the hook sits on (a weakref: not a parameter)
        self._grad_cast: Tensor | None = None      # decode's weight gradient in the autocast dtype

    def _fast(self) -> bool:
        return self.row_grad and self.weight.requires_grad and torch.is_grad_enabled() and not _data_parallel()

    def forward(self, ids: Tensor) -> Tensor:
        sparse = self._fast()
        if sparse and (self._hooked is None or self._hooked() is not self.weight):  # replaced (loading, tying)
            self.weight.register_post_accumulate_grad_hook(self._densify)
            self._hooked = weakref.ref(self.weight)
        return F.embedding(ids, self.weight, sparse=sparse)

    def decode(self, h: Tensor, bias: Tensor, rows: int | None = None) -> Tensor:
        """``F.linear(h, weight[:rows], bias[:rows])``: the output layer tied to this table (MLM's decoder),
        [N, D] -> [N, rows] (``rows``: the first rows only, e.g. the vocabulary without the table's padding rows;
        default all). The result is contiguous: slicing the padding columns off a full product would leave a
        strided view that the loss copies, and whose backward zero-fills and copies a full-width gradient.

        Same values as ``F.linear`` (under autocast too), with less memory traffic: under autocast the weight's
        low-precision copy (`cast_param`) is refreshed in place when the weight changed (not a fresh
        [rows, D] cast per step), and the weight gradient is written into (or added to) the table's persistent
        gradient buffer, not allocated, cast to fp32 and summed with the lookups' gradient as new [rows, D]
        tensors. Off the fast path (no grad, multi-process jobs) it is ``F.linear``; on the reference path (``row_grad``
        off), the full-width ``F.linear`` with the columns past ``rows`` sliced off, as the tied decoder was before.
        """
        rows = self.num_embeddings if rows is None else rows
        if not 0 < rows <= self.num_embeddings:
            raise ValueError(f"decode: rows must be in 1..{self.num_embeddings}, got {rows}")
        if not self.row_grad:   # the reference path: the full product, the padding columns sliced off after
            return F.linear(h, self.weight, bias)[:, :rows]
        if not self._fast():
            return linear(h, self.weight[:rows], bias[:rows])
        device = h.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else self.weight.dtype
        with torch.autocast(device, enabled=False):
            return _TiedDecode.apply(h, bias, self, dtype, rows)

    def grad_rows(self) -> Tensor | None:
        """The rows (unique, sorted) outside which ``weight.grad`` is known to be zero: after a step in which only
        lookups reached the table (a few hundred of its rows); None when any row may be non-zero (a tied decoder
        ran, or the gradient is not this table's buffer). Gradient clipping takes the norm over these rows."""
        if self._written is None or self._buffer is None or self.weight.grad is not self._buffer:
            return None
        return torch.unique(self._written)

    def _add_decode_grad(self, grad_out: Tensor, h: Tensor) -> None:
        """weight.grad[:rows] += grad_out.T @ h (grad_out: [N, rows], h: [N, D], both in the compute dtype), in
        place; the rows past ``rows`` get no gradient from the decoder."""
        w = self.weight
        rows = grad_out.shape[1]
        grad = w.grad
        if grad is not None and grad.is_sparse:   # lookups reached the weight first (not MLM's order): densify
            grad = w.grad = grad.to_dense()
        fp32 = grad_out.dtype == w.dtype
        if not fp32:
            if self._grad_cast is None or self._grad_cast.dtype != grad_out.dtype or self._grad_cast.shape != w.shape:
                self._grad_cast = torch.empty(w.shape, dtype=grad_out.dtype, device=w.device)
            product = torch.mm(grad_out.t(), h, out=self._grad_cast[:rows])
        if grad is None:
            # every row is written, so no zeroing; a buffer of its own keeps `_buffer` clean for lookup-only steps,
            # which then clear only the rows they wrote, not the whole table
            buf = self._dense = self._new_if_changed(self._dense, w.dtype, w.device)
            if fp32:
                torch.mm(grad_out.t(), h, out=buf[:rows])
            else:
                buf[:rows].copy_(product)
            buf[rows:].zero_()
            w.grad = buf
        elif fp32:
            grad[:rows].addmm_(grad_out.t(), h)
        else:
            grad[:rows].add_(product)
        if w.grad is self._buffer:
            self._written = None   # a dense gradient: any row may be non-zero

    def _grad_buffer(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        """The persistent [rows, D] gradient buffer of the lookups (reallocated, uninitialised, when the weight
        changed shape, dtype or device; then every row counts as written)."""
        buf = self._new_if_changed(self._buffer, dtype, device)
        if buf is not self._buffer:
            self._buffer, self._written = buf, None
        return buf

    def _new_if_changed(self, buf: Tensor | None, dtype: torch.dtype, device: torch.device) -> Tensor:
        if buf is None or buf.shape != self.weight.shape or buf.dtype != dtype or buf.device != device:
            return torch.empty(self.weight.shape, dtype=dtype, device=device)
        return buf

    def _densify(self, weight: Tensor) -> None:
        grad = weight.grad
        if grad is None or not grad.is_sparse:
            if grad is not None and grad is self._buffer:  # a later micro-batch was added into it in place
                self._written = None
            return
        buf = self._grad_buffer(grad.dtype, grad.device)
        if self._written is None:
            buf.zero_()
        else:
            buf.index_fill_(0, self._written, 0)
        rows = grad._indices()[0]
        buf.index_add_(0, rows, grad._values())
        self._written = rows
        weight.grad = buf


class _TiedDecode(torch.autograd.Function):
    """`RowGradEmbedding.decode`'s product over the table's first ``rows`` rows, computed in ``dtype``
    (autocast's, or the weight's own). A CPU bf16 / fp16 product runs on h's rows zero-padded to a `bucket` size
    (oneDNN builds a kernel per shape: `hero.model.linear`); the logits are a contiguous view of the padded product,
    and the backward products run on the padded rows as well."""

    @staticmethod
    def forward(ctx, h: Tensor, bias: Tensor, table: RowGradEmbedding, dtype: torch.dtype, rows: int) -> Tensor:
        w = cast_param(table.weight, dtype)[:rows]
        hc = h.to(dtype)
        n = hc.shape[0]
        hc = pad_rows(hc, padded_rows(n, hc.device, dtype))
        ctx.save_for_backward(hc, w)
        ctx.table, ctx.h_dtype, ctx.bias_rows, ctx.bias_dtype = table, h.dtype, bias.shape[0], bias.dtype
        full = torch.addmm(bias[:rows].to(dtype), hc, w.t())
        ctx.n, ctx.full = n, full if full.shape[0] > n else None
        return full[:n]

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        hc, w = ctx.saved_tensors
        n, full = ctx.n, ctx.full
        ctx.full = None
        grad_out = grad_out.to(w.dtype)
        if full is not None:   # back to the padded rows: in place where the gradient was written into the logits
            if grad_out.data_ptr() == full.data_ptr() and grad_out.stride() == full.stride():
                grad_out = full
                grad_out[n:].zero_()
            else:
                grad_out = pad_rows(grad_out, full.shape[0])
        grad_h = (grad_out @ w)[:n].to(ctx.h_dtype) if ctx.needs_input_grad[0] else None
        grad_bias = None
        if ctx.needs_input_grad[1]:
            grad_bias = grad_out.new_zeros(ctx.bias_rows, dtype=ctx.bias_dtype)
            if grad_out.dtype == ctx.bias_dtype:
                torch.sum(grad_out, 0, out=grad_bias[: grad_out.shape[1]])
            else:   # summed in the compute dtype (as F.linear's bias gradient), then cast: ~6x cheaper than
                grad_bias[: grad_out.shape[1]].copy_(grad_out.sum(0))   # converting the [N, rows] gradient first
        ctx.table._add_decode_grad(grad_out, hc)
        return grad_h, grad_bias, None, None, None


class TextEmbedding(nn.Module):
    """word + position + token type -> LayerNorm -> dropout (BERT-style; HERO's SubEmbeddings)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.word = RowGradEmbedding(cfg.embedding_rows, cfg.hidden_size)
        self.position = nn.Embedding(cfg.max_text_positions, cfg.hidden_size)
        self.token_type = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.embedding_norm_eps)
        self.drop = Dropout(cfg.dropout)
        self.offset = cfg.text_position_offset
        self.type_id = cfg.text_type_id

    def default_positions(self, ids: Tensor) -> Tensor:
        """[N, L] positions offset + 0..L-1, clipped to the table (HERO clips at 511)."""
        pos = torch.arange(ids.shape[-1], device=ids.device) + self.offset
        return pos.clamp(max=self.position.num_embeddings - 1).expand_as(ids)

    def forward(self, ids: Tensor, positions: Tensor | None = None) -> Tensor:
        """ids: [N, L] long -> [N, L, D]."""
        if positions is None:
            positions = self.default_positions(ids)
        x = self.word(ids) + self.position(positions) + self.token_type.weight[self.type_id]
        return self.drop(self.norm(x))


def norm_project(x: Tensor, norm: nn.LayerNorm, proj: nn.Linear) -> Tensor:
    """``proj(norm(x))`` for an input that needs no gradient (clip features): the same values and parameter
    gradients without the input-side backward. x: [..., K] -> [..., N].

    The weight gradient is ``g^T (xhat * gamma + beta) = (g^T xhat) * gamma + (g^T 1) beta`` and the LayerNorm's
    own gradients follow from the same ``g^T xhat``: ``grad gamma = sum_n W * (g^T xhat)``, ``grad beta = W^T (g^T
    1)``; so the backward is one [N, M] x [M, K] product and elementwise work over [N, K], where autograd computes
    the [M, N] x [N, K] input gradient and the LayerNorm's backward over [M, K] as well (K = 4352 feature
    dimensions here, M the clips of the batch). Under autocast the products run in its dtype, as `nn.Linear`'s.
    """
    device = x.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else proj.weight.dtype
    K = x.shape[-1]
    with torch.autocast(device, enabled=False):
        y = _NormProject.apply(x.reshape(-1, K), norm.weight, norm.bias, proj.weight, proj.bias, norm.eps, dtype)
    return y.view(*x.shape[:-1], y.shape[-1])


class _NormProject(torch.autograd.Function):
    """`norm_project`'s LayerNorm (``gamma``, ``beta``) and product (``weight``, ``bias``) on x [M, K]; x gets no
    gradient. The products run in ``dtype``; the parameters' gradients come back in their own dtype."""

    @staticmethod
    def forward(ctx, x: Tensor, gamma: Tensor, beta: Tensor, weight: Tensor, bias: Tensor, eps: float,
                dtype: torch.dtype) -> Tensor:
        m = x.shape[0]
        x = pad_rows(x, padded_rows(m, x.device, dtype))   # zero rows: outputs sliced off, gradient zero
        xhat = F.layer_norm(x, (x.shape[-1],), None, None, eps)
        u = torch.addcmul(beta, xhat, gamma)
        xhat = xhat.to(dtype)
        ctx.save_for_backward(xhat, gamma, beta, weight)
        ctx.m = m
        return torch.addmm(cast_param(bias, dtype), u.to(dtype), cast_param(weight, dtype).t())[:m]

    @staticmethod
    def backward(ctx, grad: Tensor):
        xhat, gamma, beta, weight = ctx.saved_tensors
        grad = pad_rows(grad, xhat.shape[0], xhat.dtype)
        gt_xhat = (grad.t() @ xhat).to(weight.dtype)                # [N, K]
        gsum = grad.sum(0).to(weight.dtype)                         # [N]
        grad_gamma = (weight * gt_xhat).sum(0)
        grad_beta = gsum @ weight
        grad_weight = gt_xhat.mul_(gamma).addr_(gsum, beta)
        return None, grad_gamma, grad_beta, grad_weight, gsum, None, None   # the bias's gradient is the row sum


def add_mask_vectors(feats: Tensor, masked: Tensor, mask_vector: Tensor, unmasked_vector: Tensor | None) -> Tensor:
    """MFM input: feats [..., Df] + ``mask_vector`` where ``masked`` [...] is True, + ``unmasked_vector`` (when
    given) where it is False. The latter is row 0 of the original HERO's 2-row mask table (``compat: original``)."""
    if unmasked_vector is None:
        return feats + masked.unsqueeze(-1).to(feats.dtype) * mask_vector
    return feats + torch.where(masked.unsqueeze(-1), mask_vector, unmasked_vector).to(feats.dtype)


def fill_missing_buffer(module: nn.Module, state_dict: dict, prefix: str, name: str) -> None:
    """Zeros for buffer ``name`` when ``state_dict`` lacks it: checkpoints written before it existed ran with zero."""
    buf = getattr(module, name, None)
    if buf is not None and prefix + name not in state_dict:
        state_dict[prefix + name] = torch.zeros_like(buf)


class FrameEmbedding(nn.Module):
    """Clip features entering the cross-modal level (HERO's ImageEmbeddings).

    feature (+ learned mask vector where MFM masked it) -> LayerNorm(Df) -> Linear(Df, D)
    + position + token type (the text table's frame row) -> LayerNorm -> dropout

    Under ``compat: original`` the MFM input also gets ``unmasked_vector`` on every frame MFM did not mask: the
    original looks both cases up in a 2-row table whose row 0 (``padding_idx``) its weight init overwrites with
    random values and no gradient ever reaches. It is a buffer (never trained), zero unless imported.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.feat_norm = nn.LayerNorm(cfg.feature_dim, eps=cfg.embedding_norm_eps)
        self.proj = Linear(cfg.feature_dim, cfg.hidden_size)
        self.position = nn.Embedding(cfg.max_frames, cfg.hidden_size)
        self.mask_vector = nn.Parameter(torch.zeros(cfg.feature_dim))
        self.register_buffer("unmasked_vector", torch.zeros(cfg.feature_dim) if cfg.compat == "original" else None)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.embedding_norm_eps)
        self.drop = Dropout(cfg.dropout)
        self.reference_path = False
        """True on the benchmark's reference path (`hero.model.use_reference_path`): autograd's LayerNorm and
        Linear on every frame, not `norm_project`."""

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        fill_missing_buffer(self, state_dict, prefix, "unmasked_vector")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def project(self, feats: Tensor, masked: Tensor | None = None) -> Tensor:
        """The position-free part, once per frame: feats [..., Df] (masked: [...] bool) -> [..., D].

        Training on features that need no gradient (the default path), the features go through `norm_project`, and
        where MFM zeroed the masked frames' features (as `Hero.forward` does) their input is the mask vector alone,
        projected once."""
        if (self.reference_path or feats.requires_grad or not torch.is_grad_enabled()
                or (masked is not None and feats[masked].any())):
            if masked is not None:
                feats = add_mask_vectors(feats, masked, self.mask_vector, self.unmasked_vector)
            return self.proj(self.feat_norm(feats))
        if masked is None:
            return norm_project(feats, self.feat_norm, self.proj)
        if self.unmasked_vector is not None:
            feats = feats + self.unmasked_vector.to(feats.dtype)   # a buffer: no gradient
        hidden = self.proj(self.feat_norm(self.mask_vector.to(feats.dtype)))   # [D]
        return torch.where(masked.unsqueeze(-1), hidden, norm_project(feats, self.feat_norm, self.proj))

    def finish(self, projected: Tensor, positions: Tensor, type_embedding: Tensor) -> Tensor:
        """projected: [N, F, D] from `project`; positions: [N, F] long; type_embedding: [D] -> [N, F, D]."""
        return self.drop(self.norm(projected + self.position(positions) + type_embedding))

    def forward(self, feats: Tensor, positions: Tensor, type_embedding: Tensor, masked: Tensor | None = None) -> Tensor:
        """feats: [N, F, Df]; positions: [N, F] long; type_embedding: [D]; masked: [N, F] bool -> [N, F, D]."""
        return self.finish(self.project(feats, masked), positions, type_embedding)


class RegionEmbedding(nn.Module):
    """A clip's region features entering the cross-modal level, the part before positions:
    LayerNorm(Dr) -> Linear(Dr, D) + Linear(4, D)(box) + a learned region-type vector. `Hero` then finishes it as
    a frame (`FrameEmbedding.finish`: the clip's frame position, the frame token type, LayerNorm, dropout), so a
    region token differs from its frame token by its content, its box and the region-type vector."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.feat_norm = nn.LayerNorm(cfg.region_dim, eps=cfg.embedding_norm_eps)
        self.proj = Linear(cfg.region_dim, cfg.hidden_size)
        self.box = Linear(4, cfg.hidden_size)
        self.type_vector = nn.Parameter(torch.zeros(cfg.hidden_size))

    def forward(self, feats: Tensor, boxes: Tensor) -> Tensor:
        """feats: [..., R, Dr]; boxes: [..., R, 4] -> [..., R, D]."""
        return self.proj(self.feat_norm(feats)) + self.box(boxes) + self.type_vector


class FrameResidual(nn.Module):
    """Raw clip feature -> D, added to the cross-modal frame output before the temporal level
    (HERO's frame_transform: LayerNorm(Df) -> dropout -> Linear -> ReLU)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(cfg.feature_dim, eps=cfg.embedding_norm_eps)
        self.drop = Dropout(cfg.dropout)
        self.proj = Linear(cfg.feature_dim, cfg.hidden_size)

    def forward(self, feats: Tensor) -> Tensor:
        return torch.relu(self.proj(self.drop(self.norm(feats))))


class PositionEmbedding(nn.Module):
    """x + position -> LayerNorm -> dropout (HERO's FrameEmbeddings / QueryFeatEmbeddings)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.position = nn.Embedding(cfg.max_text_positions, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.embedding_norm_eps)
        self.drop = Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        """x: [N, L, D] -> [N, L, D] with positions 0..L-1 added."""
        pos = torch.arange(x.shape[1], device=x.device).clamp(max=self.position.num_embeddings - 1)
        return self.drop(self.norm(x + self.position(pos)))
