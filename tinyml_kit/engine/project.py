"""``compile()``: int8 .tflite -> C project on disk, and :class:`Project` to build and run it.

``compile(path, out_dir, target="host"|"cortex-m4")`` reads the model, runs the passes, lowers every
op to a kernel call, plans the arena and writes a self-contained C99 project into ``out_dir``
(atomically: a temporary sibling folder swapped in at the end, so re-runs are idempotent). The
project holds ``manifest.json`` so :meth:`Project.load` can reopen it without recompiling.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_kit.engine import codegen
from tinyml_kit.engine.errors import BuildError, EngineError, RunError
from tinyml_kit.engine.ir import DTYPE_SIZES, Graph
from tinyml_kit.engine.lowering import KernelCall, lower_op
from tinyml_kit.engine.passes import run_passes
from tinyml_kit.engine.patch import (
    PatchConfig,
    PatchError,
    PatchStage,
    build_stage,
    choose_stage,
    replace_ops,
    stage_summary,
)
from tinyml_kit.engine.planner import Buffer, OverlapRule, Plan, Problem, Step, check_plan, plan
from tinyml_kit.engine.reader import read_tflite
from tinyml_kit.errors import MissingDependencyError

TARGETS = ("host", "cortex-m4")
VARIANTS = ("default", "asan", "profile", "portable")
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
_TOOLS = {"host": ("gcc", "make"), "cortex-m4": ("arm-none-eabi-gcc", "make", "qemu-system-arm")}
_PACKAGES = {"gcc": "gcc", "make": "make", "arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
             "qemu-system-arm": "qemu-system-arm", "arm-none-eabi-size": "binutils-arm-none-eabi"}
_SAMPLE_LINE = re.compile(r"tk: sample (\d+) (\d+) (\w+)")
_PROFILE_LINE = re.compile(r"^tk: profile (\{.*\})\s*$", re.MULTILINE)
_NP_DTYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32,
              "float32": np.float32}


def storage_name(index: int) -> str:
    return f"t{index}"


def scratch_name(position: int) -> str:
    return f"scratch{position}"


def lower_graph(graph: Graph) -> list[KernelCall]:
    """Lower every op of a graph (after passes) to a kernel call, in model order."""
    return [lower_op(op, graph) for op in graph.ops]


def build_problem(graph: Graph, calls: list[KernelCall | PatchStage]) -> Problem:
    """The planner's view: storage buffers (aliases merged), one scratch buffer per call that needs
    one, and the calls' overlap rules translated to storage names."""
    buffers: dict[str, Buffer] = {}

    def storage(t: int) -> str:
        s = graph.storage(t)
        name = storage_name(s)
        if name not in buffers:
            buffers[name] = Buffer(name, graph.tensors[s].nbytes)
        return name

    steps = []
    for position, call in enumerate(calls):
        scratch = ()
        if call.scratch_bytes > 0:
            scratch = (scratch_name(position),)
            buffers[scratch[0]] = Buffer(scratch[0], int(call.scratch_bytes))
        rules = tuple(OverlapRule(storage(o.output), storage(o.input), o.max_shift, tuple(o.exact))
                      for o in call.overlaps)
        steps.append(Step(name=call.op.describe(),
                          inputs=tuple(dict.fromkeys(storage(t) for t in call.inputs)),
                          outputs=tuple(dict.fromkeys(storage(t) for t in call.outputs)),
                          scratch=scratch, overlaps=rules))
    graph_inputs = tuple(dict.fromkeys(storage(t) for t in graph.inputs))
    graph_outputs = tuple(dict.fromkeys(storage(t) for t in graph.outputs))
    return Problem(buffers=buffers, steps=steps, graph_inputs=graph_inputs, graph_outputs=graph_outputs)


def make_layout(graph: Graph, calls: list[KernelCall | PatchStage], arena_plan: Plan,
                source_name: str) -> codegen.Layout:
    ordered = [calls[i] for i in arena_plan.order]
    positions = list(arena_plan.order)
    tensor_offsets = {int(name[1:]): off for name, off in arena_plan.offsets.items() if name.startswith("t")}
    scratch = [arena_plan.offsets.get(scratch_name(p)) if calls[p].scratch_bytes > 0 else None
               for p in positions]
    inplace = []
    for call in ordered:
        pair = (storage_name(graph.storage(call.outputs[0])), storage_name(graph.storage(call.inputs[0]))) \
            if call.inputs and call.outputs else None
        inplace.append(pair in arena_plan.overlapping if pair else False)
    return codegen.Layout(graph=graph, calls=ordered, tensor_offsets=tensor_offsets, scratch_offsets=scratch,
                          inplace=inplace, arena_bytes=arena_plan.arena_bytes, source_name=source_name)


def tensor_details(graph: Graph, indices: list[int]) -> list[dict[str, Any]]:
    out = []
    for t in indices:
        tensor = graph.tensors[t]
        out.append({
            "name": tensor.name, "index": t, "shape": list(tensor.shape), "dtype": tensor.dtype,
            "bytes": tensor.nbytes,
            "scale": float(tensor.quant.scale[0]) if tensor.quant is not None else 0.0,
            "zero_point": int(tensor.quant.zero_point[0]) if tensor.quant is not None else 0,
        })
    return out


def _plan_to_json(p: Plan) -> dict[str, Any]:
    data = asdict(p)
    data["overlapping"] = sorted([list(pair) for pair in p.overlapping])
    data["lifetimes"] = {k: list(v) for k, v in p.lifetimes.items()}
    return data


def _plan_from_json(data: dict[str, Any]) -> Plan:
    data = dict(data)
    data["overlapping"] = {tuple(pair) for pair in data["overlapping"]}
    data["lifetimes"] = {k: tuple(v) for k, v in data["lifetimes"].items()}
    return Plan(**data)


def _patch_config(patch: bool | PatchConfig | None) -> PatchConfig | None:
    if patch is None or patch is False:
        return None
    if patch is True:
        return PatchConfig()
    if isinstance(patch, PatchConfig):
        patch.validate()
        return patch
    raise PatchError(f"compile(patch=...) takes True, False or a PatchConfig; got {patch!r}.")


def compile(path: str | Path, out_dir: str | Path, target: str = "host", *, reorder: bool = True,
            plan_time_limit_s: float = 5.0, patch: bool | PatchConfig | None = False) -> Project:
    """Compile an int8 ``.tflite`` into a C project in ``out_dir`` and return the :class:`Project`.

    Args:
        path: the model file.
        out_dir: the project folder (replaced atomically if it exists).
        target: "host" (gcc, runs natively) or "cortex-m4" (arm-none-eabi-gcc, runs on QEMU mps2-an386).
        reorder: let the planner run ops in another topological order when that lowers peak memory.
        plan_time_limit_s: time budget of the planner's searches.
        patch: run the first stage patch by patch (MCUNetV2, see :mod:`tinyml_kit.engine.patch`):
            True chooses the split and the grid (smallest peak within 20% extra MACs; left layer by
            layer when patches would not lower the peak); a :class:`PatchConfig` fixes either or both.
            The manifest's ``"patch"`` entry reports both memory regimes and the extra MACs.
    """
    if target not in TARGETS:
        raise EngineError(f"Expected target in {TARGETS}. Received: target={target!r}")
    config = _patch_config(patch)
    path, out_dir = Path(path), Path(out_dir)
    graph = run_passes(read_tflite(path))
    if not graph.ops:
        raise EngineError(f"{path}: the model has no compute ops (only reshapes); nothing to compile.")
    calls = lower_graph(graph)
    steps: list[KernelCall | PatchStage] = list(calls)
    problem = build_problem(graph, steps)
    arena_plan = plan(problem, reorder=reorder, time_limit_s=plan_time_limit_s)
    check_plan(problem, arena_plan)
    total_macs = int(sum(c.macs for c in calls))
    patch_report: dict[str, Any] | None = None
    if config is not None:
        choice, reason = choose_stage(graph, calls, config, lambda s: build_problem(graph, s),
                                      baseline_peak=arena_plan.arena_bytes, time_limit_s=plan_time_limit_s)
        if choice is None:
            patch_report = {"applied": False, "layer_by_layer_peak_bytes": arena_plan.arena_bytes,
                            "reason": reason}
        else:
            check_plan(choice.problem, choice.plan)
            position = choice.plan.order.index(choice.calls.index(choice.stage))
            patch_report = stage_summary(choice.stage, choice.plan, position, total_macs,
                                         arena_plan.arena_bytes)
            steps, problem, arena_plan = choice.calls, choice.problem, choice.plan
    layout = make_layout(graph, steps, arena_plan, path.name)
    files = codegen.project_files(layout, arena_plan.lower_bound_bytes)
    manifest = {
        "version": MANIFEST_VERSION,
        "source": str(path.resolve()),
        "model_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "target": target,
        "peak_sram_bytes": arena_plan.arena_bytes,
        "lower_bound_bytes": arena_plan.lower_bound_bytes,
        "const_bytes": codegen.const_bytes(steps),
        "macs": total_macs,
        "executed_macs": total_macs + (patch_report or {}).get("extra_macs", 0),
        "inputs": tensor_details(graph, graph.inputs),
        "outputs": tensor_details(graph, graph.outputs),
        "calls": _call_entries(layout.calls),
        "profile_slots": [{"op": name, "function": fn, "macs": macs}
                          for name, fn, macs in codegen.profile_slots(layout.calls)],
        "patch": patch_report,
        "plan": _plan_to_json(arena_plan),
    }
    files[MANIFEST] = json.dumps(manifest, indent=1) + "\n"
    _write_atomically(out_dir, files, model_bytes=path.read_bytes())
    return Project(out_dir, manifest, graph=graph, calls=layout.calls, arena_plan=arena_plan)


def _call_entries(calls: list[KernelCall | PatchStage]) -> list[dict[str, Any]]:
    entries = []
    for c in calls:
        if isinstance(c, PatchStage):
            for j, op in enumerate(c.ops):
                entries.append({"op": op.describe(), "kernel": c.calls[0][j].kernel,
                                "function": c.calls[0][j].function,
                                "scratch_bytes": max(row[j].scratch_bytes for row in c.calls),
                                "macs": int(sum(row[j].macs for row in c.calls)), "patches": c.n_patches})
        else:
            entries.append({"op": c.op.describe(), "kernel": c.kernel, "function": c.function,
                            "scratch_bytes": int(c.scratch_bytes), "macs": int(c.macs)})
    return entries


def _write_atomically(out_dir: Path, files: dict[str, str], model_bytes: bytes) -> None:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        codegen.write_files(tmp, files)
        (tmp / "model.tflite").write_bytes(model_bytes)
        old_build = out_dir / "build"
        if old_build.is_dir():  # keep compiled binaries; Project.build re-checks their stamps
            shutil.move(str(old_build), str(tmp / "build"))
        if out_dir.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            os.replace(out_dir, trash / "old")
            os.replace(tmp, out_dir)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _require_tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise MissingDependencyError(
            f"'{name}' is not installed; install the Debian package {_PACKAGES.get(name, name)} "
            "(scripts/install-system-deps.sh does it)."
        )
    return found


class Project:
    """A compiled model on disk: build it, run it, read its figures.

    Attributes:
        out_dir: the project folder.
        target: "host" or "cortex-m4" (what :meth:`build`/:meth:`run` use by default).
        peak_sram_bytes: the planned arena (all activations and scratch).
        lower_bound_bytes: the planner's lower bound for that arena.
        last_instructions: instructions of the last sample's ``tk_invoke`` (cortex-m4 runs).
        last_time_ns: wall time of the last sample's ``tk_invoke`` (host runs).
    """

    def __init__(self, out_dir: Path, manifest: dict[str, Any], *, graph: Graph | None = None,
                 calls: list[KernelCall] | None = None, arena_plan: Plan | None = None) -> None:
        self.out_dir = Path(out_dir).absolute()  # runs happen from other working dirs
        self.manifest = manifest
        self.target = manifest["target"]
        self._graph, self._calls = graph, calls
        self._plan = arena_plan if arena_plan is not None else _plan_from_json(manifest["plan"])
        self.last_instructions: int | None = None
        self.last_time_ns: int | None = None
        self.last_counts: list[int] = []

    # --- figures -----------------------------------------------------------------------------

    @property
    def peak_sram_bytes(self) -> int:
        return int(self.manifest["peak_sram_bytes"])

    @property
    def lower_bound_bytes(self) -> int:
        return int(self.manifest["lower_bound_bytes"])

    @property
    def plan(self) -> Plan:
        return self._plan

    @property
    def graph(self) -> Graph:
        if self._graph is None:
            self._graph = run_passes(read_tflite(self.out_dir / "model.tflite"))
        return self._graph

    @property
    def calls(self) -> list[KernelCall | PatchStage]:
        """The steps in execution order: kernel calls, and the :class:`PatchStage` of a patched model."""
        if self._calls is None:
            steps: list[KernelCall | PatchStage] = list(lower_graph(self.graph))
            patch = self.patch
            if patch is not None and patch.get("applied"):
                stage = build_stage(self.graph, list(patch["positions"]), tuple(patch["grid"]))
                steps = replace_ops(steps, stage)  # type: ignore[arg-type]
            self._calls = [steps[i] for i in self._plan.order]
        return self._calls

    @property
    def patch(self) -> dict[str, Any] | None:
        """The patch-based inference report (``compile(..., patch=...)``), None without patches."""
        return self.manifest.get("patch")

    @property
    def layer_by_layer_peak_sram_bytes(self) -> int:
        """The arena layer-by-layer execution needs (equals :attr:`peak_sram_bytes` without patches)."""
        patch = self.patch or {}
        return int(patch.get("layer_by_layer_peak_bytes", self.peak_sram_bytes))

    @property
    def mac_overhead(self) -> float:
        """Extra MACs of patch-based execution, as a fraction of the model's MACs (0 without patches)."""
        patch = self.patch or {}
        return float(patch.get("mac_overhead", 0.0)) if patch.get("applied") else 0.0

    @property
    def input_details(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self.manifest["inputs"]]

    @property
    def output_details(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self.manifest["outputs"]]

    @property
    def flash_bytes(self) -> int:
        """cortex-m4: text + data of the built ELF (``arm-none-eabi-size``); host: constant data."""
        if self.target != "cortex-m4":
            return int(self.manifest["const_bytes"])
        elf = self.build("cortex-m4")
        out = subprocess.run([_require_tool("arm-none-eabi-size"), str(elf)], capture_output=True, text=True,
                             check=False)
        match = re.search(r"^\s*(\d+)\s+(\d+)\s+(\d+)", out.stdout, re.MULTILINE)
        if out.returncode or not match:
            raise BuildError(f"arm-none-eabi-size failed on {elf}:\n{out.stdout}{out.stderr}")
        return int(match.group(1)) + int(match.group(2))

    @classmethod
    def load(cls, out_dir: str | Path) -> Project:
        """Reopen a project written by :func:`compile` (reads its ``manifest.json``)."""
        out_dir = Path(out_dir)
        path = out_dir / MANIFEST
        if not path.is_file():
            raise EngineError(f"{out_dir}: no {MANIFEST}; it is not a project written by "
                              "tinyml_kit.engine.compile(). Compile the model again.")
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise EngineError(f"{path} is not valid JSON ({err}); compile the model again.") from None
        if manifest.get("version") != MANIFEST_VERSION:
            raise EngineError(f"{path} has manifest version {manifest.get('version')}; this tinyml-kit "
                              f"writes version {MANIFEST_VERSION}. Compile the model again.")
        return cls(out_dir, manifest)

    # --- build -------------------------------------------------------------------------------

    @staticmethod
    def _make_target(target: str, variant: str) -> str:
        if variant not in VARIANTS:
            raise EngineError(f"Expected variant in {VARIANTS}. Received: variant={variant!r}")
        if variant == "asan" and target != "host":
            raise EngineError("sanitize=True builds the host target only (ASan/UBSan need an OS).")
        if variant == "portable" and target != "cortex-m4":
            raise EngineError("portable=True builds the cortex-m4 target only (the host has no DSP path).")
        return target if variant == "default" else f"{target}-{variant}"

    def _binary(self, make_target: str) -> Path:
        name = "firmware.elf" if make_target.startswith("cortex-m4") else "model"
        return self.out_dir / "build" / make_target / name

    def _sources_digest(self, make_target: str) -> str:
        h = hashlib.sha256(make_target.encode())
        for path in sorted(self.out_dir.rglob("*")):
            rel = path.relative_to(self.out_dir)
            if path.is_file() and rel.parts[0] != "build" and path.suffix in (".c", ".h", ".ld", "") \
                    and path.name != "model.tflite":
                h.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
        return h.hexdigest()

    def build(self, target: str | None = None, *, sanitize: bool = False, profile: bool = False,
              portable: bool = False) -> Path:
        """Build the firmware (cached: rebuilt only when a source changed); returns the binary.

        ``sanitize``: host build with ASan/UBSan; ``profile``: per-op counters (``-DTK_PROFILE``, see
        :meth:`profile`); ``portable``: cortex-m4 build without the DSP-extension paths (``-DTK_NO_DSP``).
        """
        target = target or self.target
        if target not in TARGETS:
            raise EngineError(f"Expected target in {TARGETS}. Received: target={target!r}")
        chosen = [v for v, on in (("asan", sanitize), ("profile", profile), ("portable", portable)) if on]
        if len(chosen) > 1:
            raise EngineError(f"choose one build variant; got {', '.join(chosen)}.")
        make_target = self._make_target(target, chosen[0] if chosen else "default")
        binary = self._binary(make_target)
        stamp = binary.parent / ".tk-stamp"
        digest = self._sources_digest(make_target)
        if binary.is_file() and stamp.is_file() and stamp.read_text() == digest:
            return binary
        for tool in _TOOLS[target][:2]:
            _require_tool(tool)
        result = subprocess.run(["make", "-B", "-C", str(self.out_dir), make_target], capture_output=True,
                                text=True, check=False)
        if result.returncode != 0 or not binary.is_file():
            raise BuildError(f"building {self.out_dir} ({make_target}) failed:\n"
                             f"{result.stdout}{result.stderr}")
        stamp.write_text(digest)
        return binary

    # --- run ---------------------------------------------------------------------------------

    def _encode(self, inputs: Any) -> bytes:
        details = self.input_details
        if isinstance(inputs, np.ndarray):
            arrays = [inputs]
        elif isinstance(inputs, list | tuple) and inputs and all(isinstance(a, np.ndarray) for a in inputs):
            arrays = list(inputs)
        else:
            arrays = [np.asarray(inputs)]
        if len(arrays) != len(details):
            raise RunError(f"the model has {len(details)} inputs; got {len(arrays)} arrays.")
        chunks = []
        for array, d in zip(arrays, details, strict=True):
            chunks.append(_to_input_bytes(np.asarray(array), d))
        return b"".join(chunks)

    def _decode(self, data: bytes) -> list[np.ndarray]:
        outs, pos = [], 0
        for d in self.output_details:
            n = int(d["bytes"])
            values = np.frombuffer(data[pos:pos + n], dtype=_NP_DTYPES[d["dtype"]])
            outs.append(values.reshape(d["shape"]).copy())
            pos += n
        return outs

    def run(self, inputs: Any, *, target: str | None = None, timeout_s: float = 120.0) -> list[np.ndarray]:
        """Run one sample: ``inputs`` is an array (single-input model) or a list of arrays, int8 as the
        model expects or float32 (quantised with the input's scale and zero point). Returns the outputs."""
        return self.run_many([inputs], target=target, timeout_s=timeout_s)[0]

    def run_many(self, samples: list[Any], *, target: str | None = None, timeout_s: float = 120.0,
                 sanitize: bool = False, repeat: int = 1, portable: bool = False) -> list[list[np.ndarray]]:
        """Run several samples in one process (one QEMU boot); returns one output list per sample.

        ``portable`` runs the cortex-m4 build without the DSP-extension kernels (``-DTK_NO_DSP``)."""
        target = target or self.target
        binary = self.build(target, sanitize=sanitize, portable=portable)
        return self._execute(binary, target, samples, timeout_s, repeat)[0]

    def profile(self, samples: list[Any], *, target: str | None = None, timeout_s: float = 300.0,
                repeat: int = 1) -> list[dict[str, Any]]:
        """Per-op cost of an inference: builds with ``-DTK_PROFILE`` and runs ``samples``.

        Returns one dict per profile slot (an op; a patch stage's ops accumulate over its patches) with
        ``op``, ``function``, ``calls`` (kernel calls timed), ``count`` (median over samples of the
        instructions under QEMU, or ns on the host, minus the cost of reading the counter), ``unit``,
        and ``macs`` (the MACs the op executes; 0 for ops without multiplies)."""
        target = target or self.target
        binary = self.build(target, profile=True)
        _, log = self._execute(binary, target, samples, timeout_s, repeat)
        per_slot: dict[int, list[dict[str, Any]]] = {}
        for match in _PROFILE_LINE.finditer(log):
            entry = json.loads(match.group(1))
            per_slot.setdefault(int(entry["slot"]), []).append(entry)
        macs = self._slot_macs()
        rows = []
        for slot in sorted(per_slot):
            entries = per_slot[slot]
            first = entries[0]
            rows.append({"slot": slot, "op": first["op"], "function": first["function"],
                         "calls": int(first["calls"]), "unit": first["unit"],
                         "count": float(np.median([e["count"] for e in entries])),
                         "macs": macs[slot] if slot < len(macs) else 0})
        if len(rows) != len(macs):
            raise RunError(f"the profile build of {self.out_dir} reported {len(rows)} ops; expected "
                           f"{len(macs)}:\n{log[-2000:]}")
        return rows

    def _slot_macs(self) -> list[int]:
        return [int(slot["macs"]) for slot in self.manifest["profile_slots"]]

    def _execute(self, binary: Path, target: str, samples: list[Any], timeout_s: float,
                 repeat: int) -> tuple[list[list[np.ndarray]], str]:
        payload = b"".join(self._encode(s) for s in samples)
        with tempfile.TemporaryDirectory(prefix="tk-run-") as tmp:
            run_dir = Path(tmp)
            (run_dir / "input.bin").write_bytes(payload)
            if target == "host":
                cmd = [str(binary), "input.bin", "output.bin", str(int(repeat))]
            else:
                cmd = [_require_tool("qemu-system-arm"), "-M", "mps2-an386", "-nographic", "-monitor", "none",
                       "-semihosting-config", "enable=on,target=native", "-icount", "shift=0",
                       "-kernel", str(binary)]
            try:
                result = subprocess.run(cmd, cwd=run_dir, capture_output=True, text=True, timeout=timeout_s,
                                        check=False)
            except subprocess.TimeoutExpired as err:
                raise RunError(f"{' '.join(cmd)} did not finish within {timeout_s:.0f} s "
                               f"(output so far: {err.stdout!r}).") from None
            log = result.stdout + result.stderr
            counts = [int(m.group(2)) for m in _SAMPLE_LINE.finditer(log)]
            if result.returncode != 0 or len(counts) != len(samples):
                raise RunError(f"{target} run of {self.out_dir} failed (exit status {result.returncode}, "
                               f"{len(counts)}/{len(samples)} samples done):\n{log}")
            data = (run_dir / "output.bin").read_bytes()
        per_sample = sum(int(d["bytes"]) for d in self.output_details)
        if len(data) != per_sample * len(samples):
            raise RunError(f"{target} run wrote {len(data)} output bytes; "
                           f"expected {per_sample * len(samples)}.")
        self.last_counts = counts
        if target == "cortex-m4":
            self.last_instructions = counts[-1] if counts else None
        else:
            self.last_time_ns = counts[-1] if counts else None
        return [self._decode(data[i * per_sample:(i + 1) * per_sample]) for i in range(len(samples))], log


def _to_input_bytes(array: np.ndarray, detail: dict[str, Any]) -> bytes:
    dtype = detail["dtype"]
    expected = int(np.prod(detail["shape"], dtype=np.int64)) if detail["shape"] else 1
    if array.size != expected:
        raise RunError(f"input '{detail['name']}' needs {expected} values (shape {detail['shape']}); "
                       f"got an array of shape {array.shape}.")
    if array.dtype == np.dtype(_NP_DTYPES[dtype]):
        return array.astype(_NP_DTYPES[dtype]).tobytes()
    if np.issubdtype(array.dtype, np.floating) and dtype in ("int8", "uint8"):
        scale, zero_point = np.float32(detail["scale"]), int(detail["zero_point"])
        scaled = np.asarray(array, dtype=np.float32) / scale
        rounded = np.trunc(scaled + np.copysign(np.float32(0.5), scaled))
        info = np.iinfo(_NP_DTYPES[dtype])
        return np.clip(rounded + zero_point, info.min, info.max).astype(_NP_DTYPES[dtype]).tobytes()
    if dtype == "float32" and np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32).tobytes()
    raise RunError(f"input '{detail['name']}' is {dtype}; got a {array.dtype} array. Pass {dtype} values "
                   "(or float32 for a quantised input, which is quantised with its scale and zero point).")


__all__ = ["DTYPE_SIZES", "TARGETS", "PatchConfig", "Project", "build_problem", "compile", "lower_graph",
           "make_layout"]
