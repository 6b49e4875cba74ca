"""reluscope.tangent against explicit per-sample autograd (reluscope.testing.tangent), float64."""

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from reluscope.tangent import (
    LandmarkClassifier,
    LinearSimilarityClassifier,
    Metric,
    empirical_tangent_kernel,
    goodness_curve,
    per_input_gap,
    sign_agreement_mask,
    sign_agreement_scores,
    similarity_gap,
    tangent_features,
    tangent_scores,
    tangent_similarity,
)
from reluscope.testing.tangent import reference_gradients, reference_sign_scores, reference_similarity


def mlp(seed, widths=(4, 6, 5, 3), bias=True, act=nn.ReLU):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b, bias=bias), act()]
    return nn.Sequential(*layers[:-1]).double().eval()


def cnn(seed, bias=True):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, bias=bias), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(3, 4, 2, bias=bias), nn.ReLU(), nn.Flatten(), nn.Linear(16, 3, bias=bias),
    ).double().eval()


class Custom(nn.Module):
    """Not a Sequential chain: forces the torch.func.jvp path."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 5)
        self.b = nn.Linear(4, 5)
        self.c = nn.Linear(5, 3)

    def forward(self, x):
        return self.c(torch.relu(self.a(x)) * torch.tanh(self.b(x)))


def inputs(model, n, seed=1):
    g = torch.Generator().manual_seed(seed)
    shape = (n, 1, 9, 9) if isinstance(model[0], nn.Conv2d) else (n, 4)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


MODELS = [lambda: mlp(0), lambda: cnn(0), lambda: Custom().double()]


def flat_reference(model, x, per_output):
    grads = reference_gradients(model, x, per_output=per_output)
    out = torch.stack([torch.stack([torch.cat([b.reshape(-1) for b in g]) for g in gn]) for gn in grads])
    return out if per_output else out[:, 0]


@pytest.mark.parametrize("make", MODELS)
@pytest.mark.parametrize("per_output", [False, True])
def test_features_match_autograd(make, per_output):
    model = make()
    x = torch.randn(5, 4, dtype=torch.float64) if isinstance(model, Custom) else inputs(model, 5)
    ref = flat_reference(model, x, per_output)
    # the budget holds the result plus 2000 bytes of gradients at a time: forces chunks
    got = tangent_features(model, x, per_output=per_output, memory_budget=ref.numel() * ref.element_size() + 2000)
    torch.testing.assert_close(got, ref)


def test_features_normalize_and_projection():
    model, x = mlp(1), inputs(mlp(1), 6)
    g = tangent_features(model, x, normalize="per_input_minmax")
    assert torch.allclose(g.amin(1), torch.zeros(6, dtype=g.dtype)) and torch.allclose(g.amax(1), torch.ones(6, dtype=g.dtype))
    p1 = tangent_features(model, x, projection_dim=8, seed=3)
    p2 = tangent_features(model, x, projection_dim=8, seed=3, memory_budget=1000)
    assert p1.shape == (6, 8)
    torch.testing.assert_close(p1, p2)  # independent of chunking
    assert not torch.allclose(p1, tangent_features(model, x, projection_dim=8, seed=4))
    # a projection to many dimensions preserves inner products approximately
    raw = tangent_features(model, x)
    big = tangent_features(model, x, projection_dim=4000)
    rel = (big @ big.T - raw @ raw.T).norm() / (raw @ raw.T).norm()
    assert rel < 0.15


@pytest.mark.parametrize("make", MODELS)
@pytest.mark.parametrize("method", ["layerwise", "func_jvp"])
def test_scores_match_autograd(make, method):
    model = make()
    if isinstance(model, Custom):
        if method == "layerwise":
            with pytest.raises(TypeError, match="func_jvp"):
                tangent_scores(model, torch.randn(2, 4, dtype=torch.float64), method=method)
            return
        x = torch.randn(5, 4, dtype=torch.float64)
    else:
        x = inputs(model, 5)
    got = tangent_scores(model, x, method=method, memory_budget=3000)
    grads = reference_gradients(model, x, per_output=True)
    theta = [p.detach() for p in model.parameters()]
    ref = torch.tensor([[[float((g[k][l] * theta[l]).sum()) for k in range(len(g))] for l in range(len(theta))] for g in grads], dtype=torch.float64)
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(tangent_scores(model, x, per_block=False, method=method), ref.sum(1, keepdim=True))


NORMS = ("none", "per_input_minmax", "l2", "per_parameter_minmax", "value_scaling")
CASES = [(m, p, z, "mlp") for m in ("euclidean", "full", "block") for p in (False, True) for z in NORMS]
CASES += [("block", True, "per_input_minmax", "cnn"), ("full", False, "l2", "cnn"), ("euclidean", True, "none", "cnn"),
          ("block", False, "none", "cnn"), ("block", True, "per_parameter_minmax", "cnn")]


@pytest.mark.parametrize("metric, per_output, normalize, kind", CASES)
def test_similarity_matches_reference(metric, per_output, normalize, kind):
    model = mlp(2) if kind == "mlp" else cnn(2)
    x, y = inputs(model, 4, seed=5), inputs(model, 3, seed=6)
    got = tangent_similarity(model, x, y, metric=metric, per_output=per_output, normalize=normalize)
    ref = reference_similarity(model, x, y, metric=metric, per_output=per_output, normalize=normalize)
    torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("per_output", [True, False])
@pytest.mark.parametrize("normalize", ["none", "l2", "per_parameter_minmax"])
@pytest.mark.parametrize("same", [True, False])
def test_similarity_tiled_when_features_do_not_fit(per_output, normalize, same):
    """A budget too small for y's features: rows in tiles, per output, columns recomputed per tile."""
    model = mlp(4)  # 83 parameters, float64: 664 bytes per output per input
    x = inputs(model, 7, seed=2)
    y = None if same else inputs(model, 5, seed=3)
    got = tangent_similarity(model, x, y, metric="euclidean", per_output=per_output, normalize=normalize,
                             memory_budget=4000)  # tiles of 3 rows, one input per gradient chunk
    ref = reference_similarity(model, x, y, metric="euclidean", per_output=per_output, normalize=normalize)
    torch.testing.assert_close(got, ref)


def test_block_scores_of_a_parameter_the_output_ignores():
    """Forward mode with one dual block: an unused parameter has no tangent at all (scores 0)."""
    plain = Custom().double()
    model = Custom().double()
    model.load_state_dict(plain.state_dict())
    model.unused = nn.Linear(2, 2).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    s = tangent_scores(model, x, method="func_jvp")
    assert s.shape == (3, 8, 3)
    assert torch.equal(s[:, 6:], torch.zeros(3, 2, 3, dtype=torch.float64))
    torch.testing.assert_close(s[:, :6], tangent_scores(plain, x, method="func_jvp"))


def test_similarity_symmetric_default_y():
    model = cnn(3)
    x = inputs(model, 5)
    s = tangent_similarity(model, x)
    torch.testing.assert_close(s, s.T)
    torch.testing.assert_close(s, tangent_similarity(model, x, x.clone()))


def test_batchnorm_model_falls_back_to_func_jvp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2)).double()
    model.train()
    model(torch.randn(16, 4, dtype=torch.float64))
    model.eval()
    x = torch.randn(3, 4, dtype=torch.float64)
    got = tangent_similarity(model, x, metric="block", normalize=False)
    ref = reference_similarity(model, x, metric="block", normalize=False)
    torch.testing.assert_close(got, ref)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), depth=st.integers(1, 3), n=st.integers(1, 5), conv=st.booleans())
def test_euler_identity_bias_free(seed, depth, n, conv):
    """Bias-free ReLU nets: <g_k(x), theta> = L f_k(x), so per-output full = L^2 <f(x), f(y)>."""
    torch.manual_seed(seed)
    if conv:
        model, layers = cnn(seed, bias=False), 3
    else:
        model, layers = mlp(seed, widths=(4,) + (5,) * depth + (3,), bias=False), depth + 1
    x = inputs(model, n, seed=seed)
    s = tangent_similarity(model, x, metric="full", per_output=True, normalize=False)
    with torch.no_grad():
        f = model(x)
    torch.testing.assert_close(s, layers**2 * f @ f.T)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), per_output=st.booleans(), act=st.sampled_from([nn.ReLU, nn.Tanh, nn.LeakyReLU]))
def test_empirical_kernel_factorised(seed, per_output, act):
    model = mlp(seed, widths=(4, 7, 6, 3), act=act)
    x, y = inputs(model, 5, seed=seed), inputs(model, 4, seed=seed + 1)
    fx = tangent_features(model, x, per_output=per_output)
    fy = tangent_features(model, y, per_output=per_output)
    ref = fx.reshape(5, -1) @ fy.reshape(4, -1).T
    torch.testing.assert_close(empirical_tangent_kernel(model, x, y, per_output=per_output), ref)
    kx = empirical_tangent_kernel(model, x, per_output=per_output, memory_budget=100)
    torch.testing.assert_close(kx, fx.reshape(5, -1) @ fx.reshape(5, -1).T)


def test_empirical_kernel_frozen_layers_and_refusals():
    model = mlp(4)
    model[0].weight.requires_grad_(False)
    x = inputs(model, 4)
    f = tangent_features(model, x)
    torch.testing.assert_close(empirical_tangent_kernel(model, x), f @ f.T)
    with pytest.raises(TypeError, match="MLP"):
        empirical_tangent_kernel(cnn(0), inputs(cnn(0), 2))


# ----------------------------------------------------------------------------- sparse metric


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 9), classes=st.integers(2, 3))
def test_sign_scores_match_pair_counting(seed, n, classes):
    g = torch.Generator().manual_seed(seed)
    grads = torch.randint(-1, 2, (n, 6), generator=g).double()  # zeros included
    labels = torch.randint(0, classes, (n,), generator=g)
    torch.testing.assert_close(sign_agreement_scores(grads, labels), reference_sign_scores(grads, labels))


def test_sparse_similarity_matches_reference():
    model = cnn(5)
    x = inputs(model, 6)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    mask = sign_agreement_mask(model, x, labels, threshold=1.0, memory_budget=5000)
    ref_scores = sign_agreement_scores(tangent_features(model, x), labels)
    torch.testing.assert_close(mask.score, ref_scores)
    assert 0 < mask.n_kept < mask.keep.numel()
    for per_output in (False, True):
        got = tangent_similarity(model, x, metric="sparse", mask=mask, per_output=per_output)
        ref = reference_similarity(model, x, metric="sparse", per_output=per_output, keep=mask.keep)
        torch.testing.assert_close(got, ref)
    via_labels = tangent_similarity(model, x, metric="sparse", labels=labels, threshold=1.0)
    torch.testing.assert_close(via_labels, tangent_similarity(model, x, metric="sparse", mask=mask))


def test_hidden_metric_is_penultimate_inner_product():
    model = mlp(6)
    x = inputs(model, 5)
    h = torch.relu(model[2](torch.relu(model[0](x)))).detach()
    torch.testing.assert_close(tangent_similarity(model, x, metric="hidden", normalize=False), h @ h.T)
    z = model[0](x).detach()
    torch.testing.assert_close(tangent_similarity(model, x, metric=Metric.HIDDEN, normalize=False, hidden_layer="0"), z @ z.T)


# ----------------------------------------------------------------------------- quality + classifiers


def test_gap_and_goodness_by_hand():
    s = torch.tensor([[9.0, 3, 1], [3, 9, 2], [1, 2, 9]])
    labels = torch.tensor([0, 0, 1])
    gap = similarity_gap(s, labels)
    assert gap.same == 3.0 and gap.cross == 1.5 and gap.gap == 1.5
    torch.testing.assert_close(per_input_gap(s, labels), torch.tensor([2.0, 1.0, float("nan")], dtype=torch.float64), equal_nan=True)
    curve = goodness_curve(s, labels, gammas=[0.0, 1.5, 3.0])
    assert curve.eps.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])
    rect = similarity_gap(s[:, :2], labels, labels_y=torch.tensor([0, 1]))
    assert rect.same == pytest.approx((9 + 3 + 2) / 3) and rect.cross == pytest.approx((3 + 9 + 1) / 3)


def test_classifiers_precomputed_and_model():
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0]], dtype=torch.float64)
    y = torch.arange(60) % 3
    x = centers[y] + 0.5 * torch.randn(60, 4, generator=g, dtype=torch.float64)
    s = x @ x.T
    for cls in (LandmarkClassifier(), LinearSimilarityClassifier(), LinearSimilarityClassifier(loss="ridge")):
        cls.fit(s[:30, :30], y[:30])
        assert cls.score(s[30:, :30], y[30:]) > 0.9
    model = mlp(0, widths=(4, 8, 3))
    clf = LandmarkClassifier(model, metric="block").fit(x[:30], y[:30])
    assert clf.predict(x[30:]).shape == (30,)
    with pytest.raises(RuntimeError, match="fit"):
        LandmarkClassifier(model).predict(x)
    clf = LinearSimilarityClassifier(model, metric="sparse", threshold=0.5).fit(x[:30], y[:30])
    assert 0 <= clf.score(x[30:], y[30:]) <= 1


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs():
    model = mlp(0)
    x = inputs(model, 3)
    frozen = mlp(0).requires_grad_(False)
    with pytest.raises(ValueError, match="requires_grad"):
        tangent_features(frozen, x)
    with pytest.raises(ValueError, match="device"):
        tangent_similarity(model, torch.empty(3, 4, device="meta"))
    with pytest.raises(ValueError, match="empty"):
        tangent_features(model, x[:0])
    with pytest.raises(ValueError, match="empty"):
        tangent_similarity(model, x, x[:0])
    with pytest.raises(ValueError, match="metric: expected one of"):
        tangent_similarity(model, x, metric="cosine")
    with pytest.raises(ValueError, match="normalize"):
        tangent_similarity(model, x, normalize="zscore")
    with pytest.raises(ValueError, match="method"):
        tangent_scores(model, x, method="fast")
    with pytest.raises(ValueError, match="keeps no coordinate"):
        sign_agreement_mask(model, x, torch.tensor([0, 1, 0]), threshold=1e9)
    with pytest.raises(ValueError, match="mask"):
        tangent_similarity(model, x, metric="sparse")
    with pytest.raises(ValueError, match="labels"):
        sign_agreement_mask(model, x, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="integer"):
        sign_agreement_mask(model, x, torch.tensor([0.0, 1.0, 0.0]))
    with pytest.raises(TypeError, match="nn.Module"):
        tangent_features(lambda z: z, x)
    with pytest.raises(ValueError, match="projection_dim"):
        tangent_features(model, x, projection_dim=0)
    with pytest.raises(ValueError, match="memory_budget"):
        tangent_features(model, x, memory_budget=0)
    with pytest.raises(ValueError, match="shape"):
        tangent_features(model, torch.ones(4, dtype=torch.float64))


@pytest.mark.parametrize("budget", [10**9, 30_000, 5_000])
def test_euclidean_gram_chunking(budget):
    """Cached, recomputed and symmetric (upper-triangle) chunkings all give F F^T."""
    model = mlp(7, widths=(4, 30, 3))
    x = inputs(model, 23)
    for per_output in (False, True):
        f = tangent_features(model, x, per_output=per_output).reshape(23, -1)
        s = tangent_similarity(model, x, metric="euclidean", normalize=False, per_output=per_output, memory_budget=budget)
        torch.testing.assert_close(s, f @ f.T)
        s = tangent_similarity(model, x, x[:7], metric="euclidean", normalize=False, per_output=per_output, memory_budget=budget)
        torch.testing.assert_close(s, f @ f[:7].T)


# ----------------------------------------------------------------------------- issue 9: defaults


def test_default_normalisation_is_none_everywhere():
    """Regression (issue 9): tangent_similarity and both classifiers defaulted to per-input min-max,
    which put a class-mean classifier at chance on MNIST; the CLI used none. Now none everywhere."""
    import inspect

    from reluscope.cli.tangent import tangent as cli_tangent
    from reluscope.tangent import Normalization

    for fn in (tangent_similarity, tangent_features):
        default = inspect.signature(fn).parameters["normalize"].default
        assert Normalization.parse(default) is Normalization.NONE, fn
    for cls in (LandmarkClassifier, LinearSimilarityClassifier):
        assert Normalization.parse(cls().normalize) is Normalization.NONE, cls
    cli_default = inspect.signature(cli_tangent).parameters["normalize"].default
    assert Normalization(cli_default.value) is Normalization.NONE
    for cls in (LandmarkClassifier, LinearSimilarityClassifier):
        assert cls().per_output is True  # per-output by default
    model, x = mlp(4), inputs(mlp(4), 5)
    torch.testing.assert_close(tangent_similarity(model, x), reference_similarity(model, x, normalize="none"))


def test_normalisation_names_say_what_they_do_and_true_is_refused():
    from reluscope.tangent import Normalization

    assert {m.value for m in Normalization} == {
        "none", "per_input_minmax", "per_parameter_minmax", "l2", "value_scaling"}
    assert "degenerate" in Normalization.__doc__.lower()
    model, x = mlp(0), inputs(mlp(0), 3)
    for bad in (True, "minmax"):
        with pytest.raises(ValueError, match="ambiguous.*per_input_minmax.*per_parameter_minmax"):
            tangent_similarity(model, x, normalize=bad)
    with pytest.raises(ValueError, match="value_scaling"):
        tangent_similarity(model, x, metric="hidden", normalize="value_scaling")


def test_per_input_minmax_is_dominated_by_a_per_input_offset():
    """Why per-input min-max is degenerate: with many near-zero coordinates, every normalised
    vector is close to its own constant c(x) = -min g / (max g - min g), so K(x, y) ~ P c(x) c(y)
    is close to rank one and carries little of the raw similarity's structure."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 5)).double()
    x = torch.randn(30, 20, dtype=torch.float64)
    k = tangent_similarity(model, x, metric="euclidean", per_output=False, normalize="per_input_minmax")
    s = torch.linalg.svdvals(k)
    assert float(s[0] ** 2 / (s**2).sum()) > 0.95  # one direction: the offsets
    raw = tangent_similarity(model, x, metric="euclidean", per_output=False)
    s_raw = torch.linalg.svdvals(raw)
    assert float(s_raw[0] ** 2 / (s_raw**2).sum()) < float(s[0] ** 2 / (s**2).sum())


def test_per_parameter_minmax_uses_the_columns_as_reference():
    model = mlp(5)
    x, y = inputs(model, 4, seed=1), inputs(model, 6, seed=2)
    g = tangent_features(model, y, normalize="per_parameter_minmax")
    varying = (g.amax(0) - g.amin(0)) > 0
    assert torch.allclose(g.amin(0)[varying], torch.zeros(1, dtype=g.dtype))
    assert torch.allclose(g.amax(0)[varying], torch.ones(1, dtype=g.dtype))
    gx = tangent_features(model, x, normalize="per_parameter_minmax", reference=y)
    torch.testing.assert_close(tangent_similarity(model, x, y, metric="euclidean", per_output=False,
                                                  normalize="per_parameter_minmax"), gx @ g.T)


def test_block_scores_of_a_resnet_in_groups_and_one_by_one(monkeypatch):
    """20 tensors: vmap groups of 8, 8 and 4; and the per-tensor forward-AD fallback gives the same."""
    import reluscope.tangent.scores as scores
    from reluscope.testing.models import BasicBlock, tiny_resnet

    model = tiny_resnet(BasicBlock, layers=(1, 1), width=2).double()
    x = torch.randn(3, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    grads = reference_gradients(model, x, per_output=True)
    theta = [p.detach() for p in model.parameters()]
    ref = torch.tensor([[[float((g[k][l] * theta[l]).sum()) for k in range(len(g))] for l in range(len(theta))]
                        for g in grads], dtype=torch.float64)
    assert ref.shape[1] == 20
    torch.testing.assert_close(tangent_scores(model, x), ref)

    tries = []

    def no_vmap(*args):
        tries.append(1)
        raise RuntimeError("no batching rule")

    monkeypatch.setattr(scores, "_group_scores", no_vmap)
    torch.testing.assert_close(tangent_scores(model, x), ref)
    assert len(tries) == 1  # regression: every later group used to try vmap again

    def out_of_memory(*args):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(scores, "_group_scores", out_of_memory)
    with pytest.raises(RuntimeError, match="out of memory"):  # regression: was retried in the slow path
        tangent_scores(model, x)
