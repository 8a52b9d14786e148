"""Batched backbone inference for N environments: one forward for all observations.

:class:`InferenceEngine` takes the stacked observations of N environments as the environments
give them — ``(N, H, W, 3)`` uint8, a numpy array or a torch tensor on any device — and returns
``(N, out_dim)`` float32 features on the engine's device, with:

* ``torch.inference_mode`` and the model in eval mode;
* channels-last memory format: an NHWC batch *is* a channels-last NCHW tensor, so the layout
  change is a free ``permute`` and convolutions run on their fast NHWC kernels;
* reduced-precision autocast (bf16 on CUDA; on CPU where the processor has native bf16 — see
  "CPU path" below);
* host → device copies through a reused pinned buffer, non-blocking (CUDA);
* optionally ``torch.compile`` and, on CUDA for a fixed batch shape, CUDA graphs (one captured
  graph per input shape, replayed; other shapes still work, they are captured on first use).

CPU path (measured on this project's 2-core AVX-512/AVX512-BF16 machine, batch 32, 128×128,
best of 7 interleaved rounds, images/s; ``python -m thorgym.benchmarks.backbones --quick
--paths --rounds 7``)::

                     eager fp32  +channels_last  +bf16 autocast  compile fp32  compile bf16
    espnetv2_s1.0        259          403             665            787          1074
    mobilevit_xxs        208          258             435            343           463
    resnet18             111          137             245            158           316

Channels-last + bf16 autocast is the fastest eager path for all three, so ``dtype="auto"`` picks
bf16 on CPUs with native bf16 (AVX512-BF16 or AMX) and float32 elsewhere, and
``channels_last=True`` is the default. Smaller models can be the other way round
(``espnetv2_s0.5``: fp32 channels-last 914 images/s, bf16 773; BENCHMARKS.md): ``dtype="tune"``
times both on the first batch and keeps the faster. The choice then depends on the machine and
its load, so "tune" is for throughput runs, not for bit-reproducible ones. ``torch.compile`` is
faster still (ESPNetv2 +60 %) but costs 30–90 s of compilation per input shape on 2 cores, so it
stays opt-in (worth it for long runs). The machine is shared, so absolute numbers vary by 2–5×
with background load.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from thorgym.device import resolve_device

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # older torch: be conservative
        return False


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """Compute dtype for autocast. ``"auto"``: bf16 on CUDA (fp16 on GPUs without bf16), bf16
    on CPUs with native bf16, else float32. Also accepts ``"float32"``, ``"bfloat16"``,
    ``"float16"`` (and their short forms) or a ``torch.dtype``."""
    if isinstance(dtype, torch.dtype):
        out = dtype
    elif dtype in ("auto", "tune"):  # "tune": the engine times this choice against float32
        if device.type == "cuda":
            out = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        elif device.type == "cpu" and cpu_has_native_bf16():
            out = torch.bfloat16
        else:
            out = torch.float32
    elif dtype in _DTYPES:
        out = _DTYPES[dtype]
    else:
        raise ValueError(f"unknown dtype {dtype!r}; use 'auto', 'tune' or one of {sorted(_DTYPES)}")
    if out not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"unsupported compute dtype {out}")
    return out


class InferenceEngine:
    """One batched forward of a backbone over the observations of N environments.

    Args:
        backbone: a module taking ``(N, 3, H, W)`` uint8 (or float in [0, 1]) and returning
            ``(N, D)`` — any :func:`~thorgym.agents.backbones.build_backbone` model. The engine
            moves it to ``device`` and puts it in eval mode (it is meant for rollouts; train a
            separate copy or call ``.train()`` again yourself).
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, …
        dtype: compute precision through autocast: ``"auto"`` (see :func:`resolve_dtype`),
            ``"tune"`` (time ``"auto"``'s choice against float32 on the first batch, keep the
            faster; :attr:`tuned` holds the images/s of both), ``"float32"``, ``"bfloat16"`` or
            ``"float16"``. Weights stay float32; outputs are float32.
        compile: wrap the backbone in ``torch.compile`` (recompiles once per new input shape).
        cuda_graphs: on CUDA, capture one CUDA graph per input shape and replay it (ignored on
            CPU). Best with a fixed number of environments.
        channels_last: run in channels-last memory format (no copy for NHWC observations).

    Call it with ``(N, H, W, 3)`` (as envs give) or ``(N, 3, H, W)`` uint8/float observations,
    numpy or torch, or a single ``(H, W, 3)`` image (treated as N = 1).
    """

    def __init__(
        self,
        backbone: nn.Module,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        compile: bool = False,
        cuda_graphs: bool = False,
        channels_last: bool = True,
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self._tune = dtype == "tune" and self.dtype != torch.float32
        self.tuned: dict[str, float] = {}
        self.channels_last = channels_last
        self.compiled = compile
        self.cuda_graphs = bool(cuda_graphs and self.device.type == "cuda")
        model = backbone.to(self.device).eval()
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        model = model.to(memory_format=fmt)
        self.model = model
        self._fn = torch.compile(model, dynamic=False) if compile else model
        self._pinned: dict[tuple, tuple[torch.Tensor, torch.cuda.Event | None]] = {}
        self._graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}

    @property
    def out_dim(self) -> int:
        """Feature dimension of the backbone (its ``out_dim``)."""
        return int(self.model.out_dim)

    def __repr__(self) -> str:
        return (
            f"InferenceEngine({getattr(self.model, 'name', type(self.model).__name__)!r}, "
            f"device={self.device}, dtype={self.dtype}, compile={self.compiled}, "
            f"cuda_graphs={self.cuda_graphs}, channels_last={self.channels_last})"
        )

    # -- input ---------------------------------------------------------------------------------

    def _to_device(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Observations → NCHW tensor on the engine device (channels-last strides if NHWC)."""
        if isinstance(obs, np.ndarray):
            if obs.dtype != np.uint8 and not np.issubdtype(obs.dtype, np.floating):
                raise TypeError(f"observations must be uint8 or float, got {obs.dtype}")
            x = torch.from_numpy(np.ascontiguousarray(obs))
        elif isinstance(obs, torch.Tensor):
            x = obs
        else:
            raise TypeError(f"observations must be a numpy array or torch tensor, got {type(obs)}")
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4 or 3 not in (x.shape[1], x.shape[-1]):
            raise ValueError(f"expected (N, H, W, 3) or (N, 3, H, W) images, got {tuple(x.shape)}")
        nhwc = x.shape[-1] == 3 and x.shape[1] != 3
        if x.device != self.device:
            if self.device.type == "cuda" and x.device.type == "cpu":
                x = self._pinned_copy(x)
            else:
                x = x.to(self.device)
        if nhwc:
            x = x.permute(0, 3, 1, 2)  # free: NHWC storage == channels-last NCHW
        if self.channels_last:
            return x.contiguous(memory_format=torch.channels_last)  # no-op for NHWC input
        return x.contiguous()

    def _pinned_copy(self, x: torch.Tensor) -> torch.Tensor:
        """Host → device through a reused pinned staging buffer, non-blocking."""
        key = (tuple(x.shape), x.dtype)
        buf, event = self._pinned.get(key, (None, None))
        if buf is None:
            buf = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
        elif event is not None:
            event.synchronize()  # the previous copy out of this buffer must be done
        buf.copy_(x)
        out = buf.to(self.device, non_blocking=True)
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(self.device))
        self._pinned[key] = (buf, event)
        return out

    # -- forward -------------------------------------------------------------------------------

    def _autocast(self) -> torch.autocast:
        return torch.autocast(
            self.device.type,
            dtype=self.dtype,
            enabled=self.dtype != torch.float32,
            cache_enabled=False if self.cuda_graphs else None,
        )

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self._fn(x)

    def _graph_run(self, x: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), tuple(x.stride()), x.dtype)
        entry = self._graphs.get(key)
        if entry is None:
            with torch.cuda.device(self.device):
                static_in = x.clone()
                stream = torch.cuda.Stream()
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    for _ in range(3):  # warm-up (and compilation) outside the capture
                        self._run(static_in)
                torch.cuda.current_stream().wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    static_out = self._run(static_in)
            entry = (graph, static_in, static_out)
            self._graphs[key] = entry
        graph, static_in, static_out = entry
        static_in.copy_(x)
        graph.replay()
        return static_out.clone()

    @torch.inference_mode()
    def __call__(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``(N, out_dim)`` float32 features of the observation batch, on the engine device."""
        x = self._to_device(obs)
        if self._tune:
            self._pick_dtype(x)
        out = self._graph_run(x) if self.cuda_graphs else self._run(x)
        return out.float()

    def _pick_dtype(self, x: torch.Tensor, rounds: int = 5, warmup: int = 3) -> None:
        """Time the reduced dtype against float32 on this batch (interleaved, best of
        ``rounds`` after a warm-up each) and keep the faster one."""
        import time

        candidates = [self.dtype, torch.float32]
        best = {d: float("inf") for d in candidates}
        for _ in range(warmup):  # allocator, autocast caches, oneDNN/cuDNN kernel selection
            for d in candidates:
                self.dtype = d
                self._run(x)
        for _ in range(rounds):
            for d in candidates:
                self.dtype = d
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                t0 = time.perf_counter()
                self._run(x)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                best[d] = min(best[d], time.perf_counter() - t0)
        self.dtype = min(candidates, key=lambda d: best[d])
        self.tuned = {str(d).removeprefix("torch."): x.shape[0] / best[d] for d in candidates}
        self._tune = False

    def features(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Alias of calling the engine."""
        return self(obs)
