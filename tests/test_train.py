import json

import pytest
import torch

from digitdet.config import load_config
from digitdet.errors import DigitdetError, TrainingError
from digitdet.model import build_model
from digitdet.model.checkpoint import load_checkpoint, model_from_checkpoint
from digitdet.training import fit as train_mod
from tiny import CPU, TINY, make_tiny_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def test_fit_writes_the_run_folder(data, tmp_path):
    cfg = load_config([CPU], TINY)
    summary = train_mod.fit(cfg, data, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.jsonl", "last.pt", "best.pt", "curve.png", "train_summary.json"):
        assert (run / name).is_file(), name
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [0, 1]
    assert {"loss", "loss_classifier", "images_per_s"} <= set(lines[0]["train"])
    assert set(lines[0]["val"]) >= {"AP", "AP50", "ARl"} and "val_number_accuracy" in lines[0]
    assert load_config([run / "config.yaml"]) == cfg  # the merged config round-trips
    best = load_checkpoint(run / "best.pt")
    assert 0.05 <= best["read_thresh"] <= 0.95  # tuned on validation and stored
    assert summary["epochs"] == 2 and summary["train_images_per_s"] > 0
    cfg2, model, _ = model_from_checkpoint(run / "best.pt")
    assert cfg2.predict.read_thresh == best["read_thresh"]
    assert not model.training and not any(m.training for m in model.modules())  # ready to predict
    # The model holds exactly best.pt's weights ...
    state = model.state_dict()
    assert set(state) == set(best["model"])
    for key, value in best["model"].items():
        assert torch.equal(state[key], value), key
    # ... and they are trained ones: the initialisation fit started from (same seed) is left behind.
    torch.manual_seed(cfg.train.seed)
    fresh = build_model(cfg).state_dict()
    params = {k for k, p in model.named_parameters() if p.requires_grad}
    moved = {k for k in params if not torch.equal(fresh[k], state[k])}
    assert moved == params, sorted(params - moved)[:5]
    # cpu.yaml keeps the pretrained trunk frozen: its weights and statistics are the ones loaded.
    frozen = [k for k in state if k.startswith("backbone.body.")]
    assert frozen and params.isdisjoint(frozen) and all(torch.equal(fresh[k], state[k]) for k in frozen)


def test_resume_matches_an_uninterrupted_run(data, tmp_path, monkeypatch):
    cfg = load_config([CPU], TINY)
    train_mod.fit(cfg, data, tmp_path / "a", progress=False)

    calls = {"n": 0}

    def crash_after_first_epoch(out, history):
        calls["n"] += 1
        raise KeyboardInterrupt  # the process dies right after last.pt of epoch 0 was written

    monkeypatch.setattr(train_mod, "_plot", crash_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_mod.fit(cfg, data, tmp_path / "b", progress=False)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 0
    train_mod.fit(cfg, data, tmp_path / "b", resume=True, progress=False)

    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["epoch"] == b["epoch"] == 1 and a["step"] == b["step"]
    for key, tensor in a["model"].items():
        assert torch.allclose(tensor.float(), b["model"][key].float(), atol=1e-5), key
    assert len(b["history"]) == 2


def test_resume_without_checkpoint_is_an_error(data, tmp_path):
    with pytest.raises(DigitdetError, match="nothing to resume"):
        train_mod.fit(load_config([CPU], TINY), data, tmp_path / "none", resume=True, progress=False)


def test_non_finite_loss_stops_with_the_step(data, tmp_path):
    cfg = load_config([CPU], [*TINY, "train.lr=1e30", "train.warmup_iters=0", "train.clip_grad_norm=0"])
    with pytest.raises(TrainingError, match=r"non-finite loss at epoch 0 step \d+"):
        train_mod.fit(cfg, data, tmp_path / "nan", progress=False)


def test_no_weight_decay_on_norms_and_biases():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    decay, no_decay = train_mod.param_groups(model, 0.1)
    assert [p.ndim for p in decay["params"]] == [4]
    assert sorted(p.ndim for p in no_decay["params"]) == [1, 1, 1]
    assert no_decay["weight_decay"] == 0.0


def test_two_gloo_processes_train_like_torchrun(data, tmp_path):
    """DDP on CPU: 2 processes under torch.distributed.run; rank 0 writes one consistent run folder."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    # --standalone: a rendezvous on a free port (a fixed one collides with another run of the tests)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           "-m", "digitdet.cli", "-q", "train", "--config", str(CPU), "--data", str(data), "--out", str(out),
           *TINY, "train.epochs=1", "train.threads=1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1  # written once, by rank 0
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["read_thresh"] is not None and ckpt["step"] == 1  # 8 images / (2 ranks x batch 4)


def test_a_kill_between_the_log_and_last_pt_logs_no_epoch_twice(data, tmp_path, monkeypatch):
    cfg = load_config([CPU], [*TINY, "train.epochs=3"])
    real_save = train_mod.save_checkpoint

    def die_before_last_pt_of_epoch_1(path, state):
        if path.name == "last.pt" and state["epoch"] == 1:
            raise KeyboardInterrupt  # metrics.jsonl already holds epoch 1, last.pt still says epoch 0
        real_save(path, state)

    monkeypatch.setattr(train_mod, "save_checkpoint", die_before_last_pt_of_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        train_mod.fit(cfg, data, tmp_path / "run", progress=False)
    monkeypatch.undo()
    train_mod.fit(cfg, data, tmp_path / "run", resume=True, progress=False)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [0, 1, 2]
    assert not list((tmp_path / "run").glob(".metrics.jsonl*")), "temp file left behind"


def test_warm_up_is_not_mistaken_for_a_plateau_cut(data, tmp_path):
    # 8 training images at batch 4 = 2 steps per epoch, so warm-up (8 steps) is still on at epoch 0's end.
    cfg = load_config([CPU], [*TINY, "train.scheduler=plateau", "train.lr=1e-3", "train.warmup_iters=8",
                              "train.plateau_patience=100", "train.epochs=2"])
    train_mod.fit(cfg, data, tmp_path / "run", progress=False)
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert last["lr_scale"] == 1.0  # no plateau cut happened
    assert [h["lr"] for h in last["history"]] == [1e-3, 1e-3]
    sched = train_mod.LrSchedule(cfg, train_mod.StepBudget(cap=100, images_per_step=4))
    sched.scale = last["lr_scale"]
    assert sched.lr(7) == pytest.approx(1e-3) and sched.lr(3) == pytest.approx(0.5e-3)


def test_an_unreadable_checkpoint_says_why(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DigitdetError) as info:
        load_checkpoint(bad)
    msg = str(info.value)
    assert str(bad) in msg and "invalid load key" in msg and "\n" not in msg


def test_an_image_budget_stops_mid_epoch_and_repeats_exactly(data, tmp_path):
    # 8 training images at batch 4: 2 steps per epoch; 12 images = 3 steps = one epoch and a half.
    cfg = load_config([CPU], [*TINY, "train.epochs=5", "train.max_images=12"])
    a = train_mod.fit(cfg, data, tmp_path / "a", progress=False)
    assert (a["steps"], a["train_images"], a["epochs"], a["budget_steps"]) == (3, 12, 2, 3)
    lines = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 3] and {x["budget_steps"] for x in lines} == {3}
    train_mod.fit(cfg, data, tmp_path / "b", progress=False)
    wa, wb = (load_checkpoint(tmp_path / r / "last.pt")["model"] for r in ("a", "b"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # same seed + same budget -> the same weights


def test_a_minutes_budget_is_turned_into_steps_once(monkeypatch):
    from digitdet.training import budget as budget_mod

    now = {"t": 0.0}
    monkeypatch.setattr(budget_mod.time, "monotonic", lambda: now["t"])
    b = budget_mod.StepBudget(cap=1000, images_per_step=8, max_minutes=1.0)
    assert b.steps is None and b.total == 1000
    for step in range(1, 22):  # every step takes 2 s; the first one is not timed
        now["t"] += 2.0
        assert not b.after_step(step)
    assert b.steps == 30 and b.seconds_per_step == 2.0  # 60 s / 2 s
    now["t"] += 100.0  # the clock no longer matters
    assert not b.after_step(29) and b.after_step(30)
    assert b.record() == {"budget_steps": 30, "budget_images": 240, "calibrated_seconds_per_step": 2.0}
    assert budget_mod.StepBudget(cap=10, images_per_step=4, max_images=1000).steps == 10  # epochs still cap it
    assert budget_mod.StepBudget(cap=10, images_per_step=4, max_images=9).steps == 3
    assert budget_mod.StepBudget(cap=10, images_per_step=4).steps == 10


def test_resume_keeps_the_calibrated_step_count_of_a_minutes_budget(data, tmp_path, monkeypatch):
    """train.max_minutes is turned into steps once (timed steps, recorded in metrics.jsonl and last.pt);
    --resume must go on with that count, neither timing again nor dropping it.
    Mutation: drop `budget.steps = ckpt["budget_steps"]` from fit's resume branch."""
    from types import SimpleNamespace

    from digitdet.training import budget as budget_mod

    clock = {"t": 0.0, "reads": 0}

    def monotonic():  # every read is one second later: a step "takes" 1 s whatever the host
        clock["t"] += 1.0
        clock["reads"] += 1
        return clock["t"]

    monkeypatch.setattr(budget_mod, "time", SimpleNamespace(monotonic=monotonic))
    monkeypatch.setattr(budget_mod, "CALIBRATION_STEPS", 2)  # timed: steps 2-3 (step 1 is not)
    # 8 images at batch 4: 2 steps per epoch. 0.09 min = 5.4 s at 1 s per step: 5 steps, in epoch 2.
    cfg = load_config([CPU], [*TINY, "train.epochs=4", "train.max_images=null", "train.max_minutes=0.09"])
    real_plot = train_mod._plot

    def die_after_epoch_1(out, history):
        real_plot(out, history)
        if history[-1]["epoch"] == 1:
            raise KeyboardInterrupt  # killed after last.pt of epoch 1, the budget already calibrated

    monkeypatch.setattr(train_mod, "_plot", die_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        train_mod.fit(cfg, data, tmp_path / "run", progress=False)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["budget_steps"] == 5
    monkeypatch.setattr(train_mod, "_plot", real_plot)
    reads = clock["reads"]
    summary = train_mod.fit(cfg, data, tmp_path / "run", resume=True, progress=False)
    assert clock["reads"] == reads  # the resumed run did not time anything again
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(x["epoch"], x["step"], x["budget_steps"]) for x in lines] == [(0, 2, None), (1, 4, 5), (2, 5, 5)]
    assert lines[1]["calibrated_seconds_per_step"] == 1.0
    assert (summary["steps"], summary["budget_steps"], summary["epochs"]) == (5, 5, 3)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == 5


def test_resume_follows_a_changed_image_budget(data, tmp_path):
    """An image budget is the config's: resuming with a longer train.max_images trains on to it (and a
    shorter one stops early), rather than keeping the step count last.pt recorded.
    Mutation: restore last.pt's budget_steps whatever the config says."""
    # 8 training images at batch 4: 2 steps per epoch.
    short = load_config([CPU], [*TINY, "train.epochs=5", "train.max_images=12"])
    assert train_mod.fit(short, data, tmp_path / "run", progress=False)["steps"] == 3
    longer = load_config([CPU], [*TINY, "train.epochs=5", "train.max_images=20"])
    summary = train_mod.fit(longer, data, tmp_path / "run", resume=True, progress=False)
    assert (summary["steps"], summary["budget_steps"]) == (5, 5)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(x["step"], x["budget_steps"]) for x in lines] == [(2, 3), (3, 3), (5, 5)]


def test_budget_flags_replace_the_configs_budget():
    from digitdet.cli import build_parser
    from digitdet.cli.budget import overrides as _overrides

    parse = build_parser().parse_args
    a = parse(["train", "--config", "c.yaml", "--data", "d", "--out", "o", "--images", "500"])
    assert _overrides(a) == ["train.max_images=500", "train.max_minutes=null"]
    a = parse(["demo", "--minutes", "2"])
    assert _overrides(a) == ["train.max_minutes=2.0", "train.max_images=null"]
    with pytest.raises(SystemExit):
        parse(["demo", "--minutes", "2", "--images", "5"])
    with pytest.raises(DigitdetError, match="max_images"):
        load_config([CPU], ["train.max_images=0"])


def test_init_weights_starts_from_a_checkpoint_and_a_misfit_is_one_error(data, tmp_path):
    first = tmp_path / "first"
    train_mod.fit(load_config([CPU], [*TINY, "train.epochs=1"]), data, first, progress=False)
    start = load_checkpoint(first / "best.pt")["model"]
    # a vanishing lr: the run keeps the weights it started from, so they are the checkpoint's, not a fresh init
    cfg = load_config([CPU], [*TINY, "train.epochs=1", "train.lr=1e-12", "train.warmup_iters=0",
                              f"train.init_weights={first / 'best.pt'}"])
    train_mod.fit(cfg, data, tmp_path / "tuned", progress=False)
    tuned = load_checkpoint(tmp_path / "tuned" / "last.pt")["model"]
    weights = [k for k in start if k.endswith("weight") and "bn" not in k and start[k].dim() > 1]
    assert weights and all(torch.allclose(start[k], tuned[k], atol=1e-6) for k in weights)
    fresh = build_model(cfg).state_dict()
    assert not all(torch.allclose(fresh[k], tuned[k], atol=1e-3) for k in weights)
    assert load_checkpoint(tmp_path / "tuned" / "last.pt")["config"]["train"]["init_weights"] == str(first / "best.pt")
    wider = load_config([CPU], [*TINY, "train.epochs=1", "model.fpn_channels=32",
                                f"train.init_weights={first / 'best.pt'}"])
    with pytest.raises(DigitdetError, match="train.init_weights=.*do not fit"):
        train_mod.fit(wider, data, tmp_path / "misfit", progress=False)


def test_a_frozen_random_trunk_is_refused_before_training(data, tmp_path):
    from digitdet.errors import ConfigError

    cfg = load_config([CPU], [*TINY, "model.backbone_weights=null"])  # cpu.yaml freezes the trunk
    with pytest.raises(ConfigError, match="frozen_stages=0 to train from scratch"):
        train_mod.fit(cfg, data, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "last.pt").exists()
    scratch = load_config([CPU], [*TINY, "model.backbone_weights=null", "model.frozen_stages=0", "train.epochs=1"])
    train_mod.fit(scratch, data, tmp_path / "scratch", progress=False)
    assert (tmp_path / "scratch" / "best.pt").is_file()
