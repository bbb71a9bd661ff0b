"""PyTorch Lightning: `Trainer(logger=ExpLedgerLogger())` records the run.

    from expledger.integrations.lightning import ExpLedgerLogger
    trainer = lightning.Trainer(max_epochs=3, logger=ExpLedgerLogger(task="asr"))
    trainer.fit(module, datamodule)

The run starts when Lightning first asks for it (setting up the checkpoint folder, or logging) (under `exp run` or a worker: attaches to that
experiment). `log_hyperparams` (`self.save_hyperparameters()` in the module) become params,
flattened (`optimizer/lr`); `log_metrics` become step series at Lightning's step; each
checkpoint `ModelCheckpoint` saves is recorded with `run.log_file(kind="checkpoint")`;
`finalize("success")` records SUCCESS with the last value of each series as metrics, a
failed fit FAILED with its exception (CANCELLED on Ctrl-C). Metrics of a `trainer.test()`
after the fit are merged into the finished result. Only rank zero writes.
"""

from __future__ import annotations

import os
from argparse import Namespace

from . import common

try:
    from lightning.fabric.loggers.logger import rank_zero_experiment
    from lightning.pytorch.loggers.logger import Logger
    from lightning.pytorch.utilities import rank_zero_only
except ImportError as error:
    raise ImportError(f"ExpLedgerLogger needs lightning ({error}): pip install 'expledger[lightning]'") from error


class ExpLedgerLogger(Logger):
    """A Lightning logger that writes to the experiment ledger.

    Args:
        name: the experiment's name (default: the script's name).
        task, model: as for `exp add --task/--model`.
        tags: tags for the experiment.
        params: params known before training starts; hyperparameters logged later add to them.
        log_checkpoints: record each saved checkpoint (path, size, sha256).
        store: a store URL (default: as the CLI resolves it).
    """

    def __init__(self, name: str | None = None, *, task: str | None = None, model: str | None = None,
                 tags: list | tuple = (), params: dict | None = None, log_checkpoints: bool = True,
                 store: str | None = None):
        super().__init__()
        self._name, self.task, self.model, self.tags, self.store = name, task, model, tags, store
        self.params = common.flat_params(dict(params or {}))
        self.log_checkpoints = log_checkpoints
        self._run = None

    @property
    def name(self) -> str:
        return "expledger"

    @property
    def version(self) -> str | None:
        """The experiment's ID (Lightning names the checkpoint folder after it)."""
        return self.experiment.id if rank_zero_only.rank == 0 else None

    @property
    @rank_zero_experiment
    def experiment(self):
        """The expledger Run, started on first use; one logger, one experiment."""
        if self._run is None:
            self._run = common.open_run(name=self._name, task=self.task, model=self.model, params=self.params,
                                        tags=self.tags, store=self.store)
        return self._run

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs) -> None:
        values = vars(params) if isinstance(params, Namespace) else dict(params or {})
        found = common.flat_params(values)
        self.params.update(found)
        if self._run is None:
            self.experiment.id  # noqa: B018  starts the run with them
        elif not self._run.finished:
            self._run.log_params(found)

    @rank_zero_only
    def log_metrics(self, metrics, step=None) -> None:
        values = common.numbers(metrics)
        if not values:
            return
        run = self.experiment
        if run.finished:
            common.late_metrics(run, values)
        else:
            run.log(values, step=step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback) -> None:
        if not self.log_checkpoints or self._run is None or self._run.finished:
            return
        for path in {checkpoint_callback.best_model_path, checkpoint_callback.last_model_path}:
            if path and os.path.isfile(path):
                self._run.log_file(path, kind="checkpoint")

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if status == "failed":
            common.finish(self._run, common.current_error() or RuntimeError("training failed"))
        else:
            common.finish(self._run, None)
