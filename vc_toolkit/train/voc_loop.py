"""Vocoder training: the GAN steps of HiFi-GAN on the shared :class:`RunLoop`.

Every step updates the discriminators (multi-period and multi-scale) with the
least-squares GAN loss, then the generator with the adversarial, feature-matching
and mel L1 losses [Kong et al., "HiFi-GAN", NeurIPS 2020, Eq. 1-6]:
``L_G = L_adv + λ_fm L_fm + λ_mel L_mel``. Both learning rates decay by
``train.lr_decay`` after every epoch. The run's life — exact resume (segments are
a function of seed, epoch and index), checkpoints, non-finite guard, logs — is the
:class:`~vc_toolkit.train.runloop.RunLoop`'s, as for the acoustic model.

Dev losses (``mel``: L1 between the log-mels of the generated and the real audio of
whole dev utterances) select ``best``; TensorBoard gets the losses, dev spectrograms
and dev audio. Before the first step the dev ``mel`` of the untrained generator and
of Griffin-Lim on the same mels are logged as references.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch.utils.data import DataLoader

from vc_toolkit import checkpoint, log
from vc_toolkit.data.vocoder import (
    VocoderBatch,
    VocoderPairs,
    collate_segments,
    load_pair,
    mel_floor,
)
from vc_toolkit.paths import checkpoints_dir
from vc_toolkit.train.runloop import EvalHook, Run, RunLoop
from vc_toolkit.train.voc_setup import VocExperiment, generator_dir
from vc_toolkit.vocoder.gan_losses import discriminator_loss, generator_loss
from vc_toolkit.vocoder.mel import LogMel

logger = log.get("voc")


class VocoderTrainer(RunLoop):
    """Trains the generator and discriminators of a :class:`VocExperiment`.

    Args:
        exp: Built by :func:`vc_toolkit.train.voc_setup.setup`.
        on_eval: Called as ``on_eval(epoch, dev_losses)`` after each dev evaluation.
    """

    def __init__(self, exp: VocExperiment, on_eval: EvalHook | None = None) -> None:
        self.exp = exp
        cfg, spk = exp.cfg, exp.spk_cfg
        mel_cfg = spk.feats.mel
        # the generator (and the original checkpoint format) takes natural-log mels
        self.log_scale = 1.0 if mel_cfg.log_base == "e" else math.log(10.0)
        self.log_mel = LogMel(dataclasses.replace(mel_cfg, log_base="e"), spk.sample_rate)
        self.log_mel.to(exp.device)
        self.hop = mel_cfg.hop_length
        self.train_set = VocoderPairs(
            exp.pairs["train"],
            self.hop,
            cfg.train.segment_frames,
            seed=cfg.train.seed,
            mel_pad=mel_floor(mel_cfg),
        )
        identity = {
            "voc": exp.voc,
            "spk": cfg.spk,
            "spk_fingerprint": exp.fingerprint["fingerprint"],
        }
        run = Run(exp.voc, exp.exp_dir, cfg.train, exp.world, exp.write, identity, exp.resume)
        super().__init__(run, on_eval)

    # ---- batches -------------------------------------------------------------------------
    def _plan(self) -> list[list[int]]:
        """This rank's batches of the current epoch: a seeded shuffle, equal counts per rank."""
        t, world = self.exp.cfg.train, self.exp.world
        order = np.random.default_rng([t.seed, self.epoch]).permutation(len(self.train_set))
        size = t.batch_size
        batches = [order[k : k + size].tolist() for k in range(0, len(order), size)]
        per_rank = len(batches) // world.world_size or len(batches)
        return batches[world.rank :: world.world_size][:per_rank]

    def _loader(self):
        self.train_set.set_epoch(self.epoch)
        plan = self._plan()[self.batch_in_epoch :]
        return DataLoader(
            self.train_set,
            batch_sampler=plan,
            collate_fn=collate_segments,
            num_workers=self.exp.cfg.train.num_workers,
            pin_memory=self.exp.device.type == "cuda",
        )

    def _epoch_length(self) -> int:
        return len(self._plan()) - self.batch_in_epoch

    def _to_device(self, batch: VocoderBatch) -> VocoderBatch:
        return batch.to(self.exp.device)

    # ---- one step --------------------------------------------------------------------------
    def _generate(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, L, n_mels) spk log-mel → (B, L * hop) waveform."""
        return self.exp.generator((mel * self.log_scale).transpose(1, 2))[:, 0]

    def _step(self, batch: VocoderBatch) -> dict[str, float] | None:
        exp, t = self.exp, self.exp.cfg.train
        real = batch.audio
        fake = self._generate(batch.mel)
        n = len(real)
        logits, _ = exp.discriminator(torch.cat([real, fake.detach()]))
        loss_d = discriminator_loss([x[:n] for x in logits], [x[n:] for x in logits])
        exp.optim_d.zero_grad(set_to_none=True)
        if not torch.isfinite(loss_d):
            return self._skip(f"discriminator loss is {float(loss_d.detach())}")
        loss_d.backward()
        exp.optim_d.step()
        logits, feats = exp.discriminator(torch.cat([real, fake]))
        loss_g, parts = generator_loss(
            [x[n:] for x in logits],
            [[f[:n] for f in fs] for fs in feats],
            [[f[n:] for f in fs] for fs in feats],
            self.log_mel(real),
            self.log_mel(fake),
            t.lambda_fm,
            t.lambda_mel,
        )
        exp.optim_g.zero_grad(set_to_none=True)
        if not torch.isfinite(loss_g):
            return self._skip(f"generator loss is {float(loss_g.detach())}")
        loss_g.backward()
        exp.optim_g.step()
        out = {"total": float(loss_g.detach()), "disc": float(loss_d.detach())}
        out.update({k: float(v.detach()) for k, v in parts.items()})
        out["lr"] = self._lr()
        return out

    def _step_extras(self, batch: VocoderBatch, step_seconds: float, data_seconds: float) -> dict:
        samples = float(batch.audio.numel())
        return {
            "samples_per_sec": samples / max(step_seconds, 1e-9),
            "data_time_share": data_seconds / max(step_seconds, 1e-9),
        }

    def _epoch_done(self) -> None:
        self.exp.sched_g.step()
        self.exp.sched_d.step()

    def _lr(self) -> float:
        return float(self.exp.optim_g.param_groups[0]["lr"])

    def _weights_finite(self) -> bool:
        parts = (self.exp.core_generator, self.exp.core_discriminator)
        return all(bool(torch.isfinite(p).all()) for m in parts for p in m.parameters())

    def _restart_hint(self) -> str:
        voc = self.exp.voc
        hint = (
            f"lower train.lr in conf/voc/{voc}.yaml and start over with ./run.sh --stage voc "
            f"--voc {voc} --force"
        )
        if (checkpoints_dir(self.exp.exp_dir) / "best.pt").is_file():
            hint += (
                ", or continue from the last good checkpoint with "
                f"./run.sh --stage voc --voc {voc} --resume_from best"
            )
        return hint

    def _diverged_hint(self) -> str:
        return f"(last lr {self._lr():.3g}); lower train.lr or check the audio"

    # ---- dev -------------------------------------------------------------------------------
    @torch.no_grad()
    def _dev_pairs(self, limit: int | None = None):
        for path in self.exp.pairs["dev"][:limit]:
            pair = load_pair(path)
            mel = torch.from_numpy(pair["mel"])[None].to(self.exp.device)
            audio = torch.from_numpy(pair["audio"])[None].to(self.exp.device)
            yield path.stem, mel, audio

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        g = self.exp.core_generator
        was_training = g.training
        g.eval()
        total, frames = 0.0, 0
        for _, mel, audio in self._dev_pairs():
            real, fake = self.log_mel(audio), self.log_mel(self._generate(mel))
            total += float((real - fake).abs().mean()) * real.shape[1]
            frames += real.shape[1]
        g.train(was_training)
        return {"mel": total / max(frames, 1)}

    def _start_baselines(self) -> None:
        from vc_toolkit.vocoder.griffin_lim import GriffinLim

        rng = checkpoint.rng_state()
        initial = self.evaluate()
        spk = self.exp.spk_cfg
        gl = GriffinLim(spk.sample_rate, spk.feats.mel, device=self.exp.device)
        total, frames = 0.0, 0
        for _, mel, audio in self._dev_pairs():
            wav = torch.from_numpy(gl(mel[0].cpu().numpy()))[None].to(self.exp.device)
            real, fake = self.log_mel(audio), self.log_mel(wav)
            total += float((real - fake).abs().mean()) * real.shape[1]
            frames += real.shape[1]
        checkpoint.set_rng_state(rng)
        self.baselines = {"initial": initial, "griffin_lim": {"mel": total / max(frames, 1)}}
        self.runlog.scalars("dev", initial, 0)
        logger.info(
            "dev mel L1 before training: %.4f; Griffin-Lim on the same mels: %.4f",
            initial["mel"],
            self.baselines["griffin_lim"]["mel"],
        )

    def _log_examples(self, step: int) -> None:
        from vc_toolkit import plots

        n = self.exp.cfg.train.dev_audio
        if not n:
            return
        g = self.exp.core_generator
        was_training = g.training
        g.eval()
        sr = self.exp.spk_cfg.sample_rate
        with torch.no_grad():
            for utt, mel, audio in self._dev_pairs(n):
                wav = self._generate(mel)
                self.runlog.audio(f"dev_audio/{utt}", wav[0].cpu().numpy(), sr, step)
                panels = [
                    ("real", self.log_mel(audio)[0].cpu().numpy()),
                    ("generated", self.log_mel(wav)[0].cpu().numpy()),
                ]
                self.runlog.figure(f"dev_mel/{utt}", plots.mel_figure(panels, title=utt), step)
        g.train(was_training)

    # ---- checkpoints and summary ------------------------------------------------------------
    def _save(self, names: list[str]) -> None:
        """The training checkpoints, and beside them ``generator/<name>.pt``: the generator
        alone in the original HiFi-GAN form (what ``infer.vocoder.voc`` and packs load)."""
        super()._save(names)
        if not self.save_checkpoints or not names:
            return
        folder = generator_dir(self.exp.exp_dir)
        state = {"generator": self.exp.core_generator.state_dict(), "step": self.step}
        for name in names:
            checkpoint.save(folder / f"{name}.pt", state)
        checkpoint.rotate(folder, self.exp.cfg.train.keep_checkpoints)

    def _task_state(self) -> dict:
        exp = self.exp
        return {
            "generator": exp.core_generator.state_dict(),
            "discriminator": exp.core_discriminator.state_dict(),
            "optim_g": exp.optim_g.state_dict(),
            "optim_d": exp.optim_d.state_dict(),
            "sched_g": exp.sched_g.state_dict(),
            "sched_d": exp.sched_d.state_dict(),
            "generator_shape": dataclasses.asdict(exp.core_generator.cfg),
        }

    def _start_message(self) -> str:
        exp = self.exp
        g = sum(p.numel() for p in exp.core_generator.parameters())
        d = sum(p.numel() for p in exp.core_discriminator.parameters())
        return (
            f"voc {exp.voc}: generator {g} params ({exp.cfg.generator.preset}), discriminators "
            f"{d}, {len(self.train_set)} train / {len(exp.pairs['dev'])} dev utts, "
            f"{len(self._plan())} batches/epoch of {exp.cfg.train.segment_frames} frames, "
            f"device {exp.device}, {torch.get_num_threads()} threads"
        )

    def _summary_head(self) -> dict:
        return {"note": self.exp.cfg.note, "lineage": self.exp.lineage}

    def _summary_fields(self) -> dict:
        exp = self.exp
        return {
            "generator_params": sum(p.numel() for p in exp.core_generator.parameters()),
            "discriminator_params": sum(p.numel() for p in exp.core_discriminator.parameters()),
            "device": str(exp.device),
        }
