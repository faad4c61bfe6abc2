"""`Trainer`: one loop for pretraining (and, through the same `PretrainModel`-style interface, finetuning).

Per optimizer step: the task comes from `TaskSampler` and, for a corpus mixture, the corpus from
`MixtureBatchSampler` (both the same on every rank, no collective); each rank runs
``accum`` micro-batches under autocast, with ``no_sync`` on all but the last; gradients are unscaled (fp16),
clipped, stepped; the step's loss is all-reduced, checked for finiteness and logged on rank 0.

Exact resume: all randomness of micro-batch ``j`` of step ``s`` (masking, query sampling, dropout) is
drawn from generators seeded by (seed, s, j), where ``j = rank * accum + a`` numbers the global batch's
micro-batches; data order depends only on (seed, s) (`StepBatchSampler`). So a run resumed at step k
repeats the uninterrupted run bit for bit on CPU, and the same global batch split over 1 or 2 ranks
computes the same gradients up to summation order. The python/numpy/torch RNG states are checkpointed per
rank as well, for hooks that draw from them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from hero import __version__ as hero_version
from hero.config import ConfigError, to_dict
from hero.data.batch import VideoBatch, tensors_to
from hero.storage.atomic import write_text_atomic
from hero.tasks import PretrainModel, TaskSampler
from hero.train import checkpoint as ckpt
from hero.train.config import RunConfig, batch_layout, with_data_facts
from hero.train.selection import Selector
from hero.model import use_reference_path
from hero.model.embeddings import RowGradEmbedding
from hero.model.pretrained import init_text_side
from hero.train.finetune import batch_videos
from hero.train.data import build_dataset, build_sampler, mix_seed
from hero.train.distributed import DistInfo, all_gather_own_first, all_reduce_mean, all_reduce_sum
from hero.train.optim import build_optimizer, build_scheduler, clip_grad_norm, take_step_scale
from hero.train.precision import autocast, flush_denormals, grad_scaler, resolve_precision
from hero.train.sinks import MetricSink, build_sinks

log = logging.getLogger(__name__)

EvalHook = Callable[[int, nn.Module], "Mapping[str, float] | None"]
"""``on_eval(step, model) -> metrics or None``: called on every rank with the unwrapped model in eval mode."""


class Trainer:
    """Builds model, data, optimizer and checkpointing from a `RunConfig`; ``fit()`` trains and returns metrics."""

    def __init__(self, cfg: RunConfig, dist: DistInfo, on_eval: EvalHook | None = None,
                 sinks: list[MetricSink] | None = None) -> None:
        cfg = with_data_facts(cfg)  # model.feature_dim from the feature store: what checkpoints record
        self.cfg, self.dist, self.on_eval = cfg, dist, on_eval
        flush_denormals()  # before any parallel region, so torch's CPU threads inherit it
        t = cfg.train
        self.run_dir = Path(t.run_dir)
        self.layout = batch_layout(t, dist.world_size)
        self.device = dist.device
        self.preset = cfg.build_preset()

        torch.manual_seed(t.seed)  # identical initialisation on every rank
        gather = all_gather_own_first if dist.world_size > 1 else None
        if cfg.task != "pretrain":  # finetuning: a downstream task behind the same interface
            from hero.train.finetune import build_task_model

            self.model = build_task_model(cfg.task, cfg.finetune, self.preset, all_gather=gather)
            if cfg.text_init:
                init_text_side(self.model.encoder, self.preset.text_init)
            self.tasks = TaskSampler({cfg.task: 1.0}, seed=t.seed)
        else:
            if cfg.text_init:
                self.model = PretrainModel.from_preset(self.preset, cfg.pretrain, all_gather=gather)
            else:
                self.model = PretrainModel(self.preset.model, cfg.pretrain, self.preset.tokens, all_gather=gather)
            self.tasks = TaskSampler(cfg.pretrain.tasks, seed=t.seed)
        self.model.to(self.device)
        self._row_tables = [m for m in self.model.modules() if isinstance(m, RowGradEmbedding)]
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim, t.max_steps)
        self.precision = resolve_precision(t.precision, self.device)
        """The compute precision this process trains in: ``train.precision`` with ``auto`` resolved for this
        device (bf16 where it runs natively, else fp32); `runtime.json` and the log record it."""
        self.scaler = grad_scaler(self.precision, self.device)
        self.torch_clipping = False
        """Clip with `torch.nn.utils.clip_grad_norm_` itself, then step (the benchmark's reference path, set by
        `use_reference_path`); the default is `hero.train.optim.clip_grad_norm`: the same clipping with less memory
        traffic on the CPU."""
        self.autocast = autocast(self.precision, self.device)
        self.generator = torch.Generator()  # the objectives' generator (prepare() runs on CPU tensors)
        if cfg.task != "pretrain":
            from hero.train.finetune import build_task_dataset

            self.dataset, collate = build_task_dataset(cfg.data, cfg.task, self.model, self.preset)
        else:
            self.dataset, collate = build_dataset(cfg.data, self.preset)
        self.collate = collate
        self.sampler = build_sampler(self.dataset, self.layout, dist.rank, seed=t.seed, max_steps=t.max_steps)
        self.selector = Selector(cfg, self.run_dir) if t.select.every else None
        self.step = 0
        resumed = self._resume_or_init()
        self.sampler.start_step = self.step

        self.ddp: nn.Module = self.model
        if dist.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DDP(self.model, device_ids=ids, find_unused_parameters=True)
        if t.compile:
            self.ddp = torch.compile(self.ddp)
        self.sinks = sinks if sinks is not None else (build_sinks(t.sinks, self.run_dir) if dist.is_main else [])
        if resumed:
            for sink in self.sinks:
                if hasattr(sink, "resume"):
                    sink.resume(self.step)
        n_params = sum(p.numel() for p in self.model.parameters())
        log.info("%s: %.2fM parameters; %d rank(s) x %d micro-step(s) x %d videos = %d per step; %s%s",
                 cfg.preset, n_params / 1e6, dist.world_size, self.layout.accum, self.layout.micro_batch,
                 self.layout.global_batch, self.precision + (" (precision: auto)" if t.precision == "auto" else ""),
                 f"; resumed at step {self.step}" if resumed else "")

    # ------------------------------------------------------------------ state
    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON meta) of the full training state; RNG states gathered from every rank."""
        tensors: dict[str, torch.Tensor] = {}
        opt = ckpt.split_state(self.optimizer.state_dict(), "optim", tensors)
        rng = self._rng_state()
        all_rng = [rng]
        if self.dist.world_size > 1:
            all_rng = [None] * self.dist.world_size
            torch.distributed.all_gather_object(all_rng, rng)  # between our own processes; never read from a file
        rng_meta = [ckpt.split_state(r, f"rng.{i}", tensors) for i, r in enumerate(all_rng)]
        meta = {
            "hero_version": hero_version,
            "config": self.cfg.to_dict(),
            "model_config": to_dict(self.preset.model),
            "world_size": self.dist.world_size,
            "optimizer": opt,
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "tasks": self.tasks.state_dict(),
            "rng": rng_meta,
        }
        if self.selector is not None:
            meta["selection"] = self.selector.state_dict()
        return tensors, meta

    def _rng_state(self) -> dict[str, Any]:
        py = random.getstate()
        npy = np.random.get_state()
        state = {
            "python": [py[0], list(py[1]), py[2]],
            "numpy": [npy[0], npy[1].tolist(), int(npy[2]), int(npy[3]), float(npy[4])],
            "torch": torch.get_rng_state(),
            "objective": self.generator.get_state(),
        }
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _set_rng_state(self, state: Mapping[str, Any]) -> None:
        py = state["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        n = state["numpy"]
        np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
        torch.set_rng_state(state["torch"])
        self.generator.set_state(state["objective"])
        if "cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"], self.device)

    def save(self) -> None:
        """Checkpoint the current step (collective: every rank must call it; rank 0 writes)."""
        tensors, meta = self.state()
        if self.dist.is_main:
            path = ckpt.save_checkpoint(self.run_dir, self.step, self.model, tensors, meta, self.cfg.train.keep_last_k)
            log.info("saved %s", path)
            if self.cfg.train.mirror_to:
                log.info("mirrored to %s", ckpt.publish_checkpoint(path, self.cfg.train.mirror_to))
        self.dist.barrier()

    def _resume_or_init(self) -> bool:
        """Load the newest valid checkpoint of run_dir (rank 0 picks it), else ``train.init_from`` weights."""
        latest = ckpt.find_latest(self.run_dir)
        step = latest.step if latest else -1
        if self.dist.world_size > 1:  # every rank resumes the step rank 0 chose (run_dir is shared)
            box = [step]
            torch.distributed.broadcast_object_list(box, src=0)
            if box[0] != step:
                latest = ckpt.load_step(self.run_dir / f"step-{box[0]:08d}") if box[0] >= 0 else None
        if latest is None:
            if self.cfg.train.init_from:
                self._init_weights(ckpt.local_source(self.cfg.train.init_from))
            return False
        self.restore(latest)
        return True

    def _init_weights(self, source: str) -> None:
        if hasattr(self.model, "load_pretrained"):  # a finetuning task maps the pretraining keys itself
            self.model.load_pretrained(source, fresh=self.cfg.train.init_fresh)
            return
        if self.cfg.train.init_fresh:
            raise ConfigError("train.init_fresh: only for finetuning (a task's model maps the pretrained keys)")
        path = Path(source)
        src = ckpt.load_step(path) if path.is_dir() else None
        if src is not None:
            missing, unexpected = src.load_weights(self.model, strict=False)
        else:
            from safetensors.torch import load_model
            missing, unexpected = load_model(self.model, str(path), strict=False)
        log.info("initialised from %s (%d missing keys, %d unexpected)", source, len(missing), len(unexpected))
        for k in missing:
            log.debug("  missing: %s", k)

    def restore(self, c: ckpt.Checkpoint) -> None:
        """Restore everything from checkpoint ``c``; fails naming the field when the architecture differs."""
        meta = c.meta
        ckpt.check_architecture(meta["model_config"], to_dict(self.preset.model))
        changed = _diff(meta["config"], self.cfg.to_dict())
        if changed:
            log.info("config changed since %s: %s", c.path.name, "; ".join(changed))
        c.load_weights(self.model, strict=True)
        tensors = c.tensors()
        self.optimizer.load_state_dict(ckpt.join_state(meta["optimizer"], tensors))
        self.scheduler.load_state_dict(meta["scheduler"])
        if meta["scaler"]:
            self.scaler.load_state_dict(meta["scaler"])
        self.sampler.load_state_dict(meta["sampler"], c.step)
        self.tasks.load_state_dict(meta["tasks"])
        if self.selector is not None and "selection" in meta:
            self.selector.load_state_dict(meta["selection"])
        rngs = meta["rng"]
        if len(rngs) != self.dist.world_size:
            log.warning("checkpoint was written by %d rank(s), this run has %d: RNG states of missing ranks are "
                        "fresh", len(rngs), self.dist.world_size)
        if self.dist.rank < len(rngs):
            self._set_rng_state(ckpt.join_state(rngs[self.dist.rank], tensors))
        self.step = c.step

    # ------------------------------------------------------------------ loop
    def _loader(self) -> Iterator[VideoBatch]:
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=self.sampler, collate_fn=self.collate, num_workers=self.cfg.data.num_workers,
            pin_memory=self.device.type == "cuda", persistent_workers=False)
        return iter(loader)

    def train_step(self, micro: list[VideoBatch]) -> dict[str, float]:
        """One optimizer step over this rank's micro-batches; returns this rank's step metrics.

        A metric is the mean over the micro-batches that report it; a counter (``TaskOutput.counters``, e.g.
        ``mlm/skipped_videos``) is their sum, returned as ``#<name>``. With a corpus mixture, micro-batches that
        score something also report ``<corpus>/loss`` and ``<task>/<corpus>/loss``.
        """
        step, task, L = self.step, self.tasks.task_at(self.step), self.layout
        corpus = self.sampler.corpus_at(step)
        sums: dict[str, float] = defaultdict(float)
        seen: dict[str, int] = defaultdict(int)
        counters: dict[str, float] = defaultdict(float)
        loss_sum, tokens = 0.0, 0
        for a, batch in enumerate(micro):
            key = mix_seed(self.cfg.train.seed, step, self.dist.rank * L.accum + a)
            self.generator.manual_seed(key)
            torch.manual_seed(key)  # dropout: a function of (seed, step, micro-batch), whatever the world size
            inputs = self.model.prepare(task, batch, self.generator, step)
            inputs = tensors_to(inputs, self.device, non_blocking=True)
            videos = batch_videos(batch)
            tokens += int(videos.sub_mask.sum()) + int(videos.frame_mask.sum())
            sync = a == L.accum - 1 or not isinstance(self.ddp, DDP)
            with contextlib.nullcontext() if sync else self.ddp.no_sync():
                with self.autocast():
                    out = self.ddp(task, inputs)
                self.scaler.scale(out.loss / L.accum).backward()
            loss_sum += float(out.loss.detach())
            metrics = dict(out.metrics)
            if corpus is not None and out.count > 0:
                metrics[f"{corpus}/loss"] = metrics[f"{task}/{corpus}/loss"] = out.loss.detach()
            for k, v in metrics.items():
                sums[k] += float(v)
                seen[k] += 1
            for k, v in out.counters.items():
                counters[k] += float(v)
        total = all_reduce_sum(loss_sum, self.dist) if self.dist.world_size > 1 else loss_sum
        loss = total / (L.accum * L.world_size)
        if not math.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss} at step {step} (task {task})")
        self.scaler.unscale_(self.optimizer)
        clip = self.cfg.optim.grad_clip
        params = [p for p in self.model.parameters() if p.grad is not None]
        if self.torch_clipping:
            norm = torch.nn.utils.clip_grad_norm_(params, clip) if clip > 0 else torch.nn.utils.get_total_norm(
                [p.grad for p in params])
        else:
            rows = {m.weight: r for m in self._row_tables if (r := m.grad_rows()) is not None}
            norm = clip_grad_norm(params, clip, rows=rows,
                                  optimizer=None if self.scaler.is_enabled() else self.optimizer)
        try:
            self.scaler.step(self.optimizer)
        finally:
            take_step_scale(self.optimizer)
        self.scaler.update()
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return {"loss": loss, "grad_norm": float(norm), "lr": lr, **{k: v / seen[k] for k, v in sums.items()},
                **{f"#{k}": v for k, v in counters.items()}, "_tokens": float(tokens)}

    def use_reference_path(self, reference: bool = True) -> "Trainer":
        """Train on the benchmark's reference implementation (or back): the model's (`hero.model.use_reference_path`)
        and torch's `clip_grad_norm_`. Same results up to float rounding and dropout draws."""
        use_reference_path(self.model, reference)
        self.torch_clipping = reference
        return self

    def fit(self) -> dict[str, float]:
        """Train from the current step to ``train.stop_after`` or ``train.max_steps``; returns the final metrics."""
        t = self.cfg.train
        stop = min(t.max_steps, t.stop_after or t.max_steps)
        final: dict[str, float] = {"train/step": float(self.step)}
        if self.step >= stop or (self.selector is not None and self.selector.stopped):
            log.info("nothing to do: run_dir %s is at step %d (stop at %d%s)", self.run_dir, self.step, stop,
                     "; stopped early by model selection" if self.selector is not None and self.selector.stopped else "")
            return final
        self._write_config()
        window = _Window()
        it = self._loader()
        t_start, step0 = time.perf_counter(), self.step
        try:
            while self.step < stop:
                t0 = time.perf_counter()
                micro = [next(it) for _ in range(self.layout.accum)]
                window.wait += time.perf_counter() - t0
                m = self.train_step(micro)
                window.add(m)
                done = self.step
                logged = done % t.log_every == 0 or done == stop
                if logged:
                    final.update(self._log_window(window, t_start, step0, stop))
                if self.on_eval is not None and ((t.eval_every and done % t.eval_every == 0) or done == stop):
                    final.update(self._evaluate())
                if self.selector is not None and (done % t.select.every == 0 or done == stop):
                    final.update(self._select())
                    if self.selector.stopped:
                        stop = done   # early stop: this step is checkpointed as the run's last
                if (t.ckpt_every and done % t.ckpt_every == 0) or done == stop:
                    self.save()
                if logged:  # the next window's clock starts after evaluation and checkpointing
                    window = _Window()
        finally:
            del it
            for s in self.sinks:
                s.close()
        final["train/step"] = float(self.step)
        return final

    def _log_window(self, w: "_Window", t_start: float, step0: int, stop: int) -> dict[str, float]:
        local = {f"train/{k}": v / w.counts[k] for k, v in w.sums.items() if not k.startswith(("_", "#"))}
        counted = {f"train/{k[1:]}": v for k, v in w.sums.items() if k.startswith("#")}  # summed, not averaged
        local.update({"perf/data_wait_s": w.wait, "perf/tokens": w.sums.get("_tokens", 0.0), **counted})
        m = all_reduce_mean(local, self.dist)
        for k in counted:  # every rank reports the same counters (same task per step): mean * ranks = sum
            m[k] *= self.dist.world_size
        elapsed = time.perf_counter() - w.t0
        tokens = m.pop("perf/tokens") * self.dist.world_size
        m["train/loss_mean"] = m["train/loss"]  # the total loss averaged over the window's steps (all objectives)
        m["train/loss"] = w.last_loss  # the exact loss of the last step (already all-reduced): one objective's
        m["train/lr"] = w.last_lr
        m["perf/samples_per_s"] = w.steps * self.layout.global_batch / elapsed
        m["perf/tokens_per_s"] = tokens / elapsed
        m["perf/data_wait_frac"] = m["perf/data_wait_s"] / elapsed
        m["perf/step_s"] = elapsed / w.steps
        if self.dist.is_main:
            for s in self.sinks:
                s.log(m, self.step)
            rate = (self.step - step0) / (time.perf_counter() - t_start)
            eta = (stop - self.step) / rate if rate > 0 else float("inf")
            tasks = " ".join(f"{k[6:-5]} {v:.4f}" for k, v in sorted(m.items()) if k.count("/") == 2 and k.endswith("/loss"))
            log.info("step %d/%d | loss %.4f (mean of %d steps) | %s | lr %.3g | %.1f samples/s | data wait %.0f%% "
                     "| ETA %s", self.step, self.cfg.train.max_steps, m["train/loss_mean"], w.steps, tasks,
                     m["train/lr"], m["perf/samples_per_s"], 100 * m["perf/data_wait_frac"], _fmt_eta(eta))
        return m

    def _evaluate(self) -> dict[str, float]:
        self.model.eval()
        try:
            out = self.on_eval(self.step, self.model) or {}
        finally:
            self.model.train()
        out = {k: float(v) for k, v in out.items()}
        if out and self.dist.is_main:
            for s in self.sinks:
                s.log(out, self.step)
        return out

    def _select(self) -> dict[str, float]:
        """Model selection (collective): rank 0 scores the held-out split, every rank learns the outcome; an
        improvement is saved as ``<run_dir>/best/step-N`` (a full checkpoint, the newest two kept)."""
        out: dict[str, float] = {}
        if self.dist.is_main:
            self.model.eval()
            try:
                out = self.selector.evaluate(self.step, self.model.task if hasattr(self.model, "task") else self.model)
            finally:
                self.model.train()
        if self.dist.world_size > 1:
            box = [out, self.selector.state_dict()]
            torch.distributed.broadcast_object_list(box, src=0)
            out = box[0]
            self.selector.load_state_dict(box[1])
        if out.get("select/improved"):
            tensors, meta = self.state()
            if self.dist.is_main:
                path = ckpt.save_checkpoint(self.run_dir / "best", self.step, self.model, tensors, meta, 2)
                log.info("selected %s", path)
            self.dist.barrier()
        if out and self.dist.is_main:
            for s in self.sinks:
                s.log(out, self.step)
        return out

    def _write_config(self) -> None:
        if self.dist.is_main:
            write_text_atomic(self.run_dir / "config.yaml", self.cfg.to_yaml())
            self._write_runtime()

    def _write_runtime(self) -> None:
        """``runtime.json``: what the config leaves to the machine (the precision ``auto`` resolved to, the CPU
        kernel family, threads, ranks, versions), so runs from different machines can be told apart. A run resumed
        under another precision than it started with says so: its steps no longer repeat bit for bit."""
        record = runtime_record(self.precision, self.cfg.train.precision, self.device, self.dist.world_size)
        path = self.run_dir / "runtime.json"
        if path.exists():
            try:
                before = json.loads(path.read_text())
            except (OSError, ValueError):
                before = {}
            if before.get("precision", record["precision"]) != record["precision"]:
                log.warning("%s: resumed in %s, trained in %s before (train.precision: %s resolves per machine); "
                            "the steps from here on are not those of an uninterrupted run", self.run_dir,
                            record["precision"], before["precision"], self.cfg.train.precision)
            record["started_in"] = before.get("started_in", before.get("precision", record["precision"]))
        write_text_atomic(path, json.dumps(record, indent=1, sort_keys=True) + "\n")


class _Window:
    """Running sums of step metrics between two log lines."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self.steps, self.wait, self.t0 = 0, 0.0, time.perf_counter()
        self.last_loss = self.last_lr = float("nan")

    def add(self, m: Mapping[str, float]) -> None:
        self.steps += 1
        self.last_loss, self.last_lr = m["loss"], m["lr"]
        for k, v in m.items():
            self.sums[k] += v
            self.counts[k] += 1


def _diff(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += _diff(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out


def runtime_record(precision: str, requested: str, device: torch.device, world_size: int) -> dict[str, Any]:
    """The machine facts of a training process that its config does not fix (`Trainer._write_runtime`)."""
    return {"precision": precision, "precision_requested": requested, "device": str(device),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "world_size": world_size, "torch": torch.__version__, "hero": hero_version}


def _fmt_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(seconds)
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"

