"""Tiny models built from configs (no download) and trained for a few steps on random tensors:
shared by the integration tests and the script they run under `exp run`. Imports the
frameworks only when called."""

from __future__ import annotations

STEPS = 4


def tiny_trainer(out_dir, callback, *, fail_at: int | None = None, interrupt: bool = False, steps: int = STEPS,
                 save_steps: int = 2, eval_steps: int | None = 2):
    """A Transformers Trainer on a 2-layer BERT classifier; forward call `fail_at` raises."""
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        Trainer,
        TrainingArguments,
    )

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=2)
    model = BertForSequenceClassification(config)
    if fail_at is not None:
        import functools

        forward, calls = model.forward, []

        @functools.wraps(forward)  # Trainer reads forward's signature to pick the batch's columns
        def failing(*args, **kwargs):
            calls.append(1)
            if len(calls) == fail_at:
                raise KeyboardInterrupt() if interrupt else RuntimeError("loss went NaN at step 3")
            return forward(*args, **kwargs)

        model.forward = failing
    data = [{"input_ids": torch.randint(0, 50, (8,)), "labels": torch.tensor(i % 2)} for i in range(16)]
    args = TrainingArguments(output_dir=str(out_dir), max_steps=steps, per_device_train_batch_size=4,
                             learning_rate=3e-4, logging_steps=1, save_steps=save_steps,
                             eval_strategy="steps" if eval_steps else "no", eval_steps=eval_steps,
                             report_to="none", use_cpu=True, disable_tqdm=True, seed=7)
    callbacks = [callback] if callback is not None else []
    return Trainer(model=model, args=args, train_dataset=data, eval_dataset=data[:4], callbacks=callbacks)


def tiny_fit(root, logger, *, fail_at: int | None = None, steps: int = STEPS):
    """A Lightning fit of a 2-layer regression MLP; the step `fail_at` raises. Returns
    (trainer, module, loader)."""
    import lightning.pytorch as pl
    import torch

    class Tiny(pl.LightningModule):
        def __init__(self, lr: float = 0.01, hidden: int = 8):
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

        def training_step(self, batch, index):
            if fail_at is not None and self.global_step == fail_at:
                raise ValueError("bad batch at step 2")
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, index):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randn(32, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    module = Tiny()
    trainer = pl.Trainer(max_steps=steps, logger=logger, log_every_n_steps=1, default_root_dir=str(root),
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                         limit_val_batches=2, val_check_interval=2)
    trainer.fit(module, loader, loader)
    return trainer, module, loader
