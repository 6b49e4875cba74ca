import dataclasses

import pytest
import torch
import torch.nn as nn

from reluscope.data import make_toy
from reluscope.train import Optimizer, TrainResult, accuracy, mlp, train_classifier


@pytest.fixture(scope="module")
def moons():
    return make_toy("moons", 300, seed=0), make_toy("moons", 200, seed=1)


def test_mlp_structure_and_seed():
    net = mlp(2, [5, 6], 3, "leaky_relu", seed=1)
    assert [type(m).__name__ for m in net] == ["Linear", "LeakyReLU", "Linear", "LeakyReLU", "Linear"]
    assert net[2].weight.shape == (6, 5)
    state = torch.random.get_rng_state()
    again = mlp(2, [5, 6], 3, "leaky_relu", seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is untouched
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), again.parameters()))
    assert not torch.equal(net[0].weight, mlp(2, [5, 6], 3, seed=2)[0].weight)
    assert len(mlp(3, [], 2)) == 1


@pytest.mark.parametrize(
    "args, message",
    [((0, [4], 2), "in_dim"), ((2, [4, 0], 2), "hidden"), ((2, [4], 2, "softplus"), "activation: expected one of relu"),
     ((2, [4, 2.0], 2), r"hidden: expected an integer >= 1 \(each entry\), got 2.0")],
)
def test_mlp_rejects_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        mlp(*args)


def test_training_is_deterministic_under_a_seed(moons):
    (x, y), _ = moons
    runs = [train_classifier(mlp(2, [8], 2, seed=0), x, y, epochs=2, batch_size=64, seed=5) for _ in range(2)]
    for a, b in zip(runs[0].model.parameters(), runs[1].model.parameters()):
        assert torch.equal(a, b)
    assert runs[0].history == runs[1].history
    other = train_classifier(mlp(2, [8], 2, seed=0), x, y, epochs=2, batch_size=64, seed=6)
    assert not torch.equal(other.model[0].weight, runs[0].model[0].weight)


def test_result_history_and_target(moons):
    (x, y), (xv, yv) = moons
    result = train_classifier(mlp(2, [16, 16], 2, seed=0), x, y, x_val=xv, y_val=yv, epochs=200, target_accuracy=0.95, lr=1e-2, batch_size=32)
    assert isinstance(result, TrainResult) and result.reached_target
    assert len(result.history) < 200 and result.history[-1].val_accuracy >= 0.95
    assert result.final_accuracy == result.history[-1].val_accuracy == accuracy(result.model, xv, yv)
    assert result.steps == result.history[-1].steps == len(result.history) * 10  # 300 / 32 -> 10 batches
    assert not result.model.training
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.steps = 0
    short = train_classifier(mlp(2, [4], 2, seed=0), x, y, epochs=1, target_accuracy=1.0, optimizer="sgd", lr=1e-3)
    assert not short.reached_target and short.history[0].val_accuracy is None


def test_callbacks_and_extra_loss(moons):
    (x, y), _ = moons
    calls = []

    def record(step, model, state):
        calls.append((step, model.training, state.epoch))

    train_classifier(mlp(2, [4], 2, seed=0), x, y, epochs=2, batch_size=100, callbacks=[record], callback_every=2)
    assert [c[0] for c in calls] == [0, 2, 4, 6]  # 3 steps per epoch, 6 in all
    assert all(not training for _, training, _ in calls)  # callbacks see the model in eval mode
    assert [c[2] for c in calls] == [0, 1, 2, 2]

    def shrink(model, xb, yb):
        return 10.0 * sum((p ** 2).sum() for p in model.parameters())

    plain = train_classifier(mlp(2, [8], 2, seed=0), x, y, epochs=5, lr=0.05, seed=0)
    small = train_classifier(mlp(2, [8], 2, seed=0), x, y, epochs=5, lr=0.05, seed=0, extra_loss=shrink)
    norm = lambda m: float(sum((p.detach() ** 2).sum() for p in m.parameters()))  # noqa: E731
    assert norm(small.model) < 0.5 * norm(plain.model)


def test_weight_decay_and_optimizer_enum(moons):
    (x, y), _ = moons
    free = train_classifier(mlp(2, [8], 2, seed=0), x, y, epochs=3, optimizer=Optimizer.SGD, lr=0.1, momentum=0.9)
    decayed = train_classifier(mlp(2, [8], 2, seed=0), x, y, epochs=3, optimizer="SGD", lr=0.1, momentum=0.9, weight_decay=0.5)
    norm = lambda m: float(m[0].weight.detach().norm())  # noqa: E731
    assert norm(decayed.model) < norm(free.model)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"y": torch.zeros(300)}, TypeError, "y: expected integer class labels"),
        ({"y": torch.zeros(5, dtype=torch.long)}, ValueError, r"y: expected shape \[N\]"),
        ({"x": torch.full((300, 2), float("nan"))}, ValueError, "x: expected finite values"),
        ({"optimizer": "lbfgs"}, ValueError, "optimizer: expected 'adam' or 'sgd'"),
        ({"epochs": 0}, ValueError, "epochs: expected an integer >= 1"),
        ({"target_accuracy": 1.5}, ValueError, "target_accuracy"),
        ({"lr": -1.0}, ValueError, "lr"),
        ({"x_val": torch.zeros(3, 2)}, ValueError, "give both or neither"),
        ({"callbacks": [1]}, TypeError, "callbacks"),
        ({"model": "net"}, TypeError, "model: expected a torch.nn.Module"),
    ],
)
def test_bad_input_is_named(kwargs, error, message, moons):
    (x, y), _ = moons
    args = {"model": mlp(2, [4], 2), "x": x, "y": y, **kwargs}
    with pytest.raises(error, match=message):
        train_classifier(args.pop("model"), args.pop("x"), args.pop("y"), **args)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_cuda_without_gpu_is_refused(moons):
    (x, y), _ = moons
    with pytest.raises(ValueError, match="torch.cuda.is_available"):
        train_classifier(mlp(2, [4], 2), x, y, device="cuda")


def test_divergence_is_reported(moons):
    (x, y), _ = moons
    with pytest.raises(FloatingPointError, match="lower lr"):
        train_classifier(mlp(2, [4], 2), x, y, extra_loss=lambda m, xb, yb: torch.tensor(float("inf")))


def test_accuracy_counts_argmax():
    model = nn.Sequential(nn.Identity())
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert accuracy(model, logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)


def test_train_result_save_load_round_trip(moons, tmp_path):
    (x, y), (xv, yv) = moons
    result = train_classifier(mlp(2, [8], 2, seed=0), x, y, x_val=xv, y_val=yv, epochs=2, batch_size=64, seed=5)
    weights, arch = result.save(tmp_path / "run" / "net")
    assert weights.name == "net.safetensors" and arch.name == "net.json"
    back = TrainResult.load(tmp_path / "run" / "net")
    assert back.history == result.history and back.steps == result.steps
    assert back.reached_target is result.reached_target and back.final_accuracy == result.final_accuracy
    for a, b in zip(result.model.state_dict().values(), back.model.state_dict().values()):
        assert torch.equal(a, b)
    assert not back.model.training and accuracy(back.model, xv, yv) == accuracy(result.model, xv, yv)
    assert result.to_dict()["steps"] == result.steps and result.to_dict()["model"]["type"] == "Sequential"


def test_train_result_load_refuses_a_plain_model(tmp_path):
    from reluscope.network.io import save_model

    save_model(mlp(2, [3], 2, seed=0), tmp_path / "m")
    with pytest.raises(ValueError, match="without a training result; load it with reluscope.load_model"):
        TrainResult.load(tmp_path / "m")
