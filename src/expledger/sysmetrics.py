"""How a run used the hardware, sampled while it runs: so "will it fit on a 24 GB card?" has an answer.

A background thread takes a sample every EXP_SYSTEM_INTERVAL seconds (default 10; 0 turns
sampling off; a Python API run starts its sampler once it has lasted a second, a shorter one
has none) of the run's process tree (CPU, resident memory), the host's memory, and each
visible GPU's memory and utilisation. Samples go to the run's step series under `system/`
(the step is the second since the run started), written about once a minute, never as ledger
lines. When the run ends its peaks go on the record's `system` object, where `--where
'system.gpu_mem_peak_mb > 20000'`, `--sort` and `--columns` reach them.

GPUs are read through NVML (`pip install nvidia-ml-py`), else `nvidia-smi`; no GPU, no driver
or no library means no GPU series, silently. Process figures come from /proc (Linux).
GPU memory is what the whole card has in use, as nvidia-smi shows it, not this process alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

FLUSH_SECONDS = 60.0
PREFIX = "system/"


def interval() -> float:
    """Seconds between samples (EXP_SYSTEM_INTERVAL, default 10); 0 or less means off."""
    from .config import system_interval

    return system_interval()


def _proc_stats() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent pid, CPU ticks used, resident pages) for every process, from /proc."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                text = handle.read()
        except OSError:
            continue  # it exited meanwhile
        fields = text[text.rfind(b")") + 2:].split()
        found[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[21]))
    return found


def _tree_usage(root: int) -> tuple[int, int] | None:
    """CPU ticks and resident bytes of `root` and all its descendants, or None when gone."""
    stats = _proc_stats()
    if root not in stats:
        return None
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    ticks = pages = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        _, used, resident = stats[pid]
        ticks += used
        pages += resident
        todo += children.get(pid, [])
    return ticks, pages * os.sysconf("SC_PAGE_SIZE")


def _host_memory_used() -> int | None:
    """Bytes of host memory in use (total minus available), from /proc/meminfo."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in handle if line.count(" ") >= 1}
    except (OSError, ValueError, IndexError):
        return None
    if "MemTotal" not in info or "MemAvailable" not in info:
        return None
    return info["MemTotal"] - info["MemAvailable"]


class Gpus:
    """Per-GPU memory used (MiB) and utilisation (%) through NVML, else nvidia-smi, else nothing.

    Args:
        visible: CUDA_VISIBLE_DEVICES of the run; numeric indices limit the GPUs read.
    """

    def __init__(self, visible: str | None = None):
        parts = [part.strip() for part in (visible or "").split(",") if part.strip()]
        self.visible = {int(p) for p in parts} if parts and all(p.isdigit() for p in parts) else None
        self._nvml = self._open_nvml()
        self._smi = None if self._nvml is not None else shutil.which("nvidia-smi")

    @staticmethod
    def _open_nvml():
        try:
            import pynvml

            pynvml.nvmlInit()
            return pynvml
        except Exception:  # not installed, no driver, no GPU: all mean "no NVML"
            return None

    def sample(self) -> list[tuple[int, float, float]]:
        """[(index, memory used in MiB, utilisation %)] of the visible GPUs."""
        if self._nvml is not None:
            found = self._from_nvml()
        elif self._smi:
            found = self._from_smi()
        else:
            return []
        return [row for row in found if self.visible is None or row[0] in self.visible]

    def _from_nvml(self) -> list[tuple[int, float, float]]:
        nvml, rows = self._nvml, []
        try:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
                rows.append((index, round(memory, 1), float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)))
        except Exception:
            return []
        return rows

    def _from_smi(self) -> list[tuple[int, float, float]]:
        try:
            proc = subprocess.run([self._smi, "--query-gpu=index,memory.used,utilization.gpu",
                                   "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc = None
        if proc is None or proc.returncode != 0:
            self._smi = None  # broken: stop asking for the rest of the run
            return []
        rows = []
        for line in proc.stdout.splitlines():
            parts = [part.strip() for part in line.split(",")]
            try:
                rows.append((int(parts[0]), float(parts[1]), float(parts[2])))
            except (ValueError, IndexError):
                continue  # "[N/A]" and the like
        return rows

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass


class Sampler(threading.Thread):
    """Sample a process tree and the GPUs until stopped; `stop()` returns the peaks.

    Args:
        store: the run's store; the sampler writes through its own connection to it (a thread
            of its own must not share the caller's database connection).
        exp: the running experiment.
        pid: the root of the process tree to measure (the command, or this process).
        every: seconds between samples.
        visible: the run's CUDA_VISIBLE_DEVICES.
    """

    def __init__(self, store, exp, *, pid: int, every: float, visible: str | None = None,
                 since: float | None = None):
        super().__init__(name=f"expledger-system-{exp.id}", daemon=True)
        self.store, self.exp, self.pid, self.every, self.visible = store, exp, pid, every, visible
        self.since = since  # time.monotonic() when the run began, if before now: sample at once
        self.peaks: dict = {}
        self._stop_event = threading.Event()
        self._pending: dict[str, tuple[list, list]] = {}
        self._last_cpu: tuple[float, int] | None = None
        self._sums: dict[str, float] = {}
        self._own = None  # this thread's connection to the store, opened at the first write

    def run(self) -> None:
        gpus = Gpus(self.visible)
        next_flush = time.monotonic() + FLUSH_SECONDS
        started = self.since if self.since is not None else time.monotonic()
        try:
            if self.since is not None:  # started once the run had lasted: its first sample now
                self._sample(gpus, int(time.monotonic() - started))
            while not self._stop_event.wait(min(self.every, 1.0) if not self._sums else self.every):
                now = time.monotonic()
                self._sample(gpus, int(now - started))
                if now >= next_flush:
                    self._flush()
                    next_flush = now + FLUSH_SECONDS
        finally:
            gpus.close()
            self._flush()
            if self._own is not None:
                self._own.close()

    def stop(self) -> dict:
        """Stop sampling, write what is pending, and return the peaks for the record."""
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=30)
        return self.summary()

    def summary(self) -> dict:
        samples = self._sums.get("samples", 0)
        if not samples:
            return {}
        out = {**self.peaks, "samples": int(samples), "interval": self.every}
        if self._sums.get("gpu_samples"):
            out["gpu_util_mean"] = round(self._sums["gpu_util"] / self._sums["gpu_samples"], 1)
        return out

    def _sample(self, gpus: Gpus, second: int) -> None:
        values: dict[str, float] = {}
        tree = _tree_usage(self.pid) if os.path.isdir("/proc") else None
        if tree is not None:
            ticks, resident = tree
            values["rss_mb"] = round(resident / 2**20, 1)
            moment = time.monotonic()
            if self._last_cpu is not None:
                elapsed = moment - self._last_cpu[0]
                used = (ticks - self._last_cpu[1]) / os.sysconf("SC_CLK_TCK")
                values["cpu_percent"] = round(max(0.0, 100 * used / elapsed), 1) if elapsed > 0 else 0.0
            self._last_cpu = (moment, ticks)
            self._peak("rss_peak_mb", values["rss_mb"])
            if "cpu_percent" in values:
                self._peak("cpu_percent_peak", values["cpu_percent"])
        host = _host_memory_used()
        if host is not None:
            values["host_mem_used_mb"] = round(host / 2**20, 1)
            self._peak("host_mem_peak_mb", values["host_mem_used_mb"])
        for index, memory, utilisation in gpus.sample():
            values[f"gpu{index}_mem_mb"] = memory
            values[f"gpu{index}_util"] = utilisation
            self._peak("gpu_mem_peak_mb", memory)
            self._peak("gpu_util_peak", utilisation)
            self._sums["gpu_util"] = self._sums.get("gpu_util", 0.0) + utilisation
            self._sums["gpu_samples"] = self._sums.get("gpu_samples", 0) + 1
        self._sums["samples"] = self._sums.get("samples", 0) + 1
        for name, value in values.items():
            held = self._pending.setdefault(PREFIX + name, ([], []))
            held[0].append(second)
            held[1].append(value)

    def _peak(self, name: str, value: float) -> None:
        if value > self.peaks.get(name, float("-inf")):
            self.peaks[name] = value

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            if self._own is None:
                from .store import open_store

                self._own = open_store(self.store.url)
            self._own.append_steps(self.exp, pending)
        except Exception as err:  # never let measuring hurt the run
            from .log import warn

            warn(f"system metrics of {self.exp.id} not saved: {err}")


def start(store, exp, *, pid: int, visible: str | None = None, since: float | None = None) -> Sampler | None:
    """A running Sampler for a run, or None when EXP_SYSTEM_INTERVAL turns sampling off.
    `since`: when the run began (time.monotonic()), for a sampler started once it had lasted."""
    every = interval()
    if every <= 0:
        return None
    sampler = Sampler(store, exp, pid=pid, every=every, visible=visible, since=since)
    sampler.start()
    return sampler
