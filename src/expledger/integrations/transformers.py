"""Hugging Face Transformers: `Trainer(..., callbacks=[ExpLedgerCallback()])` records the run.

    from expledger.integrations.transformers import ExpLedgerCallback
    trainer = Trainer(model=model, args=TrainingArguments(..., report_to="none"),
                      callbacks=[ExpLedgerCallback(task="asr")])
    trainer.train()

On train begin it starts an experiment (under `exp run` or a worker: attaches to that one)
with the TrainingArguments that differ from their defaults (plus the usual core: learning
rate, batch size, epochs, steps, seed, …) and the model config's non-default values under
`model/` as params; every `on_log` dict becomes step metrics at `state.global_step`; each saved
checkpoint is recorded with `run.log_file(kind="checkpoint")`; on train end the result is
SUCCESS with the last value of each series (the final evaluation metrics among them) as its
metrics. When `train()` raises, the run is FAILED with the exception (CANCELLED on Ctrl-C).
Metrics of a `trainer.evaluate()` after training are merged into the finished result.
Only the main process (`state.is_world_process_zero`) writes.
"""

from __future__ import annotations

import dataclasses
import functools
import os

from . import common

try:
    from transformers import Trainer, TrainerCallback
except ImportError as error:
    raise ImportError(f"ExpLedgerCallback needs transformers ({error}): pip install 'expledger[transformers]'") from error

# Always kept, even at their defaults: what anyone comparing two runs looks at first.
CORE_ARGS = ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs",
             "max_steps", "weight_decay", "warmup_steps", "lr_scheduler_type", "optim", "seed")
# Where and how it logs or saves, not what it trains: noise in a comparison.
NOISY_ARGS = frozenset({
    "output_dir", "logging_dir", "run_name", "report_to", "overwrite_output_dir", "local_rank", "push_to_hub",
    "hub_model_id", "hub_token", "hub_strategy", "hub_private_repo", "hub_always_push", "hub_revision",
    "push_to_hub_model_id", "push_to_hub_organization", "push_to_hub_token", "disable_tqdm", "logging_first_step",
    "logging_nan_inf_filter", "save_on_each_node", "save_safetensors", "resume_from_checkpoint", "deepspeed",
    "fsdp_config", "accelerator_config", "dataloader_num_workers", "dataloader_pin_memory",
    "dataloader_persistent_workers", "dataloader_prefetch_factor", "ddp_backend", "trackio_space_id",
    "project", "ignore_data_skip", "past_index", "log_level", "log_level_replica",
})
NOISY_CONFIG = frozenset({"architectures", "transformers_version", "id2label", "label2id", "dtype", "torch_dtype"})


class ExpLedgerCallback(TrainerCallback):
    """Record a Trainer's run in the experiment ledger.

    Args:
        name: the experiment's name (default: `run_name` when set, else the model's class).
        task: what is studied, as for `exp add --task`.
        model: the model's name (default: the config's `_name_or_path`, else its `model_type`).
        tags: tags for the experiment.
        params: extra params; they win over the ones read from the arguments and the config.
        log_checkpoints: record each saved checkpoint folder's files (path, size, sha256).
        store: a store URL (default: as the CLI resolves it).
    """

    def __init__(self, *, name: str | None = None, task: str | None = None, model: str | None = None,
                 tags: list | tuple = (), params: dict | None = None, log_checkpoints: bool = True,
                 store: str | None = None):
        self.name, self.task, self.model, self.tags, self.store = name, task, model, tags, store
        self.extra_params = dict(params or {})
        self.log_checkpoints = log_checkpoints
        self.run = None
        _watch_train(Trainer)

    # --- Trainer events --------------------------------------------------------------

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not state.is_world_process_zero:
            return
        common.finish(self.run, None)  # a second train() on the same callback: a new run
        config = getattr(model, "config", None)
        params = {**training_params(args), **model_params(config), **self.extra_params}
        self.run = common.open_run(
            name=self.name or (args.run_name if args.run_name and args.run_name != args.output_dir else None)
            or type(model).__name__, task=self.task, model=self.model or model_name(config), params=params,
            tags=self.tags, store=self.store)

    def on_log(self, args, state, control, logs=None, **kwargs):
        values = common.numbers(logs)
        if self.run is None or not values:
            return
        if self.run.finished:
            common.late_metrics(self.run, values)
        else:
            self.run.log(values, step=state.global_step)

    def on_save(self, args, state, control, **kwargs):
        if self.run is None or self.run.finished or not self.log_checkpoints:
            return
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if os.path.isdir(folder):
            self.run.log_file(folder, kind="checkpoint")

    def on_train_end(self, args, state, control, **kwargs):
        common.finish(self.run, None)

    def _failed(self, error: BaseException) -> None:
        common.finish(self.run, error)


def training_params(args) -> dict:
    """The TrainingArguments that say what is trained: non-default values, plus CORE_ARGS."""
    values = args.to_dict()
    defaults = {f.name: f.default for f in dataclasses.fields(args) if f.default is not dataclasses.MISSING}
    chosen = {key: value for key, value in values.items()
              if key in CORE_ARGS or key not in defaults or _plain(value) != _plain(defaults[key])}
    return common.flat_params(chosen, skip=NOISY_ARGS)


def _plain(value):
    return value.value if hasattr(value, "value") else value


def model_params(config) -> dict:
    """The model config's values that differ from its class defaults, under `model/`."""
    if config is None:
        return {}
    try:
        values = config.to_diff_dict()
    except (TypeError, ValueError, AttributeError):  # a custom config that cannot build its defaults
        values = config.to_dict()
    return common.flat_params(values, prefix="model/", skip=NOISY_CONFIG)


def model_name(config) -> str | None:
    if config is None:
        return None
    return getattr(config, "_name_or_path", None) or getattr(config, "model_type", None) or None


def _watch_train(trainer_class) -> None:
    """Make `Trainer.train` tell our callbacks when it raises: Trainer has no event for that."""
    if getattr(trainer_class.train, "_expledger", False):
        return
    original = trainer_class.train

    @functools.wraps(original)
    def train(self, *args, **kwargs):
        try:
            return original(self, *args, **kwargs)
        except BaseException as error:
            for callback in self.callback_handler.callbacks:
                if isinstance(callback, ExpLedgerCallback):
                    callback._failed(error)
            raise

    train._expledger = True
    trainer_class.train = train
