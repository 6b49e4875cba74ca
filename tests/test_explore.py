"""The explorer: validated requests, API answers equal to the library's, and one run per server.

The page itself is tested in a real browser in test_explore_browser.py.
"""

import time

import numpy as np
import pytest
import torch

from reluscope.explore import ExploreConfig, ExploreRun
from reluscope.explore.plane_view import PlaneView
from reluscope.explore.views import face_at, frame_from_map
from reluscope.folding import path_folding
from reluscope.patterns import activation_patterns
from reluscope.regions import regions_2d

starlette = pytest.importorskip("starlette", reason="the explorer needs the 'explore' extra (starlette, uvicorn)")
from starlette.testclient import TestClient  # noqa: E402

from reluscope.explore.server import Trainer, bind_socket, create_app  # noqa: E402

SMALL = ExploreConfig(n_points=60, widths=(8, 8), steps_per_frame=3, seed=1)


@pytest.fixture(scope="module")
def client():
    trainer = Trainer(ExploreRun(SMALL))
    with TestClient(create_app(trainer=trainer)) as c:
        yield c


# -- requests are validated and capped -----------------------------------------------------------
@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"widths": [10_000]}, "widths: expected an integer in [1, 64]"),
        ({"widths": [8] * 9}, "widths: expected 1 to 4 hidden widths"),
        ({"n_points": 10**7}, "n_points: expected an integer in [4, 2000]"),
        ({"lr": float("nan")}, "lr: expected a number"),
        ({"data": "imagenet"}, "data: expected one of"),
        ({"bogus": 1}, "unknown field(s) ['bogus']"),
        ({"steps_per_frame": True}, "steps_per_frame: expected an integer"),
    ],
)
def test_config_refuses_bad_requests(body, fragment):
    with pytest.raises(ValueError) as err:
        ExploreConfig.from_request(body)
    assert fragment in str(err.value)


def test_config_parses_the_page_form():
    c = ExploreConfig.from_request({"widths": "16, 8", "lr": "0.05", "data": "xor", "seed": "3"})
    assert c.widths == (16, 8) and c.lr == 0.05 and c.data.value == "xor" and c.seed == 3
    assert ExploreConfig.from_request(c.to_dict()) == c


def test_bad_request_is_a_400_with_one_line(client):
    r = client.post("/api/control/reset", json={"config": {"widths": [10_000]}})
    assert r.status_code == 400 and "widths" in r.json()["error"]
    r = client.post("/api/traverse", json={"p0": [0, "x"], "p1": [1, 1]})
    assert r.status_code == 400 and r.json()["error"].startswith("p0:")
    r = client.post("/api/traverse", content=b"{not json")
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]


def test_only_packaged_assets_are_served(client):
    assert client.get("/").status_code == 200
    assert "app.js" in client.get("/").text
    assert client.get("/static/app.js").status_code == 200
    for path in ("/static/server.py", "/static/..%2Fserver.py", "/static/%2Fetc%2Fpasswd", "/etc/passwd"):
        assert client.get(path).status_code == 404


def test_server_binds_loopback_only():
    sock = bind_socket(0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()


def test_taken_port_is_a_clear_error():
    sock = bind_socket(0)
    try:
        with pytest.raises(ValueError, match="cannot listen on 127.0.0.1"):
            bind_socket(sock.getsockname()[1])
    finally:
        sock.close()


# -- answers equal the library's ---------------------------------------------------------------------
def test_frame_is_the_exact_region_map_of_the_frames_network(client):
    client.post("/api/control/reset", json={"config": SMALL.to_dict()})
    client.post("/api/control/step")
    f = client.get("/api/frame?since=-1").json()
    run = client.app.state.trainer.run
    rmap = regions_2d(run._frame_model, box=run.box)
    assert f["n_regions"] == rmap.n_regions
    assert len(f["offsets"]) == rmap.n_regions + 1 and len(f["colours"]) == rmap.n_regions
    assert f["step"] == run.steps == SMALL.steps_per_frame
    assert client.get(f"/api/frame?since={f['version']}").status_code == 204


def test_segment_chi_equals_path_folding(client):
    p0, p1 = [-1.2, -0.3], [2.1, 0.8]
    s = client.post("/api/traverse", json={"p0": p0, "p1": p1}).json()
    model = client.app.state.trainer.run._frame_model
    ref = path_folding(model, torch.tensor(p0, dtype=torch.float64), torch.tensor(p1, dtype=torch.float64))
    assert s["chi"] == pytest.approx(ref.chi, abs=1e-12)
    assert s["n_pieces"] == ref.n_patterns and s["exact"] is True
    assert s["running_chi"][-1] == pytest.approx(ref.chi, abs=1e-9)


def test_hovered_region_has_the_pattern_of_the_point(client):
    model = client.app.state.trainer.run._frame_model
    for x, y in [(0.3, 0.2), (-0.7, 0.9), (1.5, -0.4)]:
        r = client.get(f"/api/region?x={x}&y={y}").json()
        bits = activation_patterns(model, torch.tensor([[x, y]], dtype=torch.float64))[0]
        assert r["pattern"] == "".join("1" if b else "0" for b in bits.tolist())
    assert client.get("/api/region?x=1e5&y=0").json() == {"face": -1}


def test_face_at_agrees_with_brute_force_containment():
    run = ExploreRun(SMALL)
    rmap = regions_2d(run.model, box=run.box)
    rng = np.random.default_rng(0)
    pts = rng.uniform([run.box[0], run.box[2]], [run.box[1], run.box[3]], size=(40, 2))
    bits = activation_patterns(run.model, torch.from_numpy(pts)).numpy()
    for p, b in zip(pts, bits):
        assert (rmap.patterns[face_at(rmap, p)] == b).all()


def test_colours_are_the_viz_palette():
    from reluscope.viz.regions import face_colours

    rmap = regions_2d(ExploreRun(SMALL).model, box=(-1, 1, -1, 1))
    frame = frame_from_map(rmap, version=1, step=0, history={}, fiedler_side=None, map_ms=0, map_every=1, remapped=True)
    page = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in frame.colours]) / 255
    assert np.abs(page - face_colours(rmap)).max() <= 0.5 / 255


def test_hulls_report_nch_accuracy_of_the_full_layer(client):
    from reluscope.hull import NearestConvexHull

    h = client.get("/api/hulls?layer=2").json()
    run = client.app.state.trainer.run
    with torch.no_grad():
        cut = run._frame_model[:4]
        acc = NearestConvexHull().fit(cut(run.x_train).numpy(), run.y_train.numpy()).score(cut(run.x_test).numpy(), run.y_test.numpy())
    assert h["nch_test_accuracy"] == pytest.approx(acc)
    assert len(h["hulls"]) == 2 and 0 < h["explained_variance"] <= 1
    assert client.get("/api/hulls?layer=9").status_code == 400


# -- one training per server ------------------------------------------------------------------------------
def test_second_tab_watches_the_same_run(client):
    client.post("/api/control/reset", json={"config": SMALL.to_dict()})
    client.post("/api/control/step")
    a = client.get("/api/state").json()
    other = TestClient(client.app)  # no `with`: the app's lifespan (and its trainer) is the first client's
    b = other.get("/api/state").json()
    assert a["step"] == b["step"] and a["version"] == b["version"]
    other.post("/api/control/step")
    assert client.get("/api/state").json()["step"] == 2 * SMALL.steps_per_frame


def test_play_trains_in_the_background_and_pause_stops(client):
    client.post("/api/control/reset", json={"config": SMALL.to_dict()})
    client.post("/api/control/play")
    trainer = client.app.state.trainer
    for _ in range(600):
        if trainer.run.steps >= 2 * SMALL.steps_per_frame:
            break
        time.sleep(0.05)
    client.post("/api/control/pause")
    assert trainer.run.steps >= 2 * SMALL.steps_per_frame and not trainer.playing


# -- saved models: a plane through three images ----------------------------------------------------------
def _image_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3)).double()


def test_plane_view_through_three_images():
    images = torch.rand(30, 16, dtype=torch.float64)
    labels = torch.arange(30) % 3
    view = PlaneView(_image_model(), name="tiny", images=images, labels=labels)
    pf = view.frame("0,1,2")
    assert pf.classes == [0, 1, 2] and len(pf.anchors) == 3
    box = view._map.box
    for s, t in pf.anchors:  # the default box contains the anchors, with a margin
        assert box[0] < s < box[1] and box[2] < t < box[3]
    for (s, t), img in zip(pf.anchors, pf.images):
        assert np.allclose(view.image_at([s, t])["image"], img, atol=1e-3)
    seg = view.traverse(pf.anchors[0], pf.anchors[1])
    ref = path_folding(view.model, images[0], images[1])
    assert seg.chi == pytest.approx(ref.chi, abs=1e-9)
    with pytest.raises(ValueError, match="classes: expected three"):
        view.frame("1,2")
    with pytest.raises(ValueError, match=r"classes: \[7\] not in"):
        view.frame("0,1,7")


class _ResidualCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.c2 = torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Conv2d(2, 2, 3, padding=1)
        self.fc = torch.nn.Linear(2 * 2 * 2, 3)

    def forward(self, x):
        h = torch.relu(self.c1(x))
        h = torch.nn.functional.max_pool2d(torch.relu(h + self.c2(h)), 2)
        return self.fc(h.flatten(1))


def test_plane_view_of_a_residual_cnn_with_maxpool():
    images = torch.randn(30, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(30) % 3
    model = _ResidualCNN().double()
    view = PlaneView(model, name="cnn", images=images, labels=labels)
    pf = view.frame("0,1,2")
    ref = regions_2d(model, plane=view.plane)
    assert view._map.n_regions == ref.n_regions > 1 and pf.image_shape == [4, 4]
    for (s, t), img in zip(pf.anchors, pf.images):
        assert np.allclose(view.image_at([s, t])["image"], img, atol=1e-3)


def test_plane_view_refuses_mismatched_images():
    with pytest.raises(ValueError, match="expects inputs of 16 numbers"):
        PlaneView(_image_model(), name="tiny", images=torch.rand(5, 25), labels=torch.arange(5))


def test_importing_the_explorer_loads_no_server():
    import subprocess
    import sys

    code = "import reluscope.explore, sys; print(sorted(m for m in ('starlette', 'uvicorn', 'selenium') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_exact_graph_variant_can_be_chosen_and_charts_its_kappa(client):
    from reluscope.regions import GraphVariant, fiedler_partition, fiedler_score

    state = client.get("/api/state").json()
    assert set(state["variants"]) == {v.value for v in GraphVariant} - {"authors-grid"}
    assert state["variant"] == GraphVariant.LENGTH_RW.value  # the library's default
    for variant in ("unit-sym", "length"):
        assert client.post("/api/control/variant", json={"variant": variant}).status_code == 200
        f = client.get("/api/frame?since=-1").json()
        run = client.app.state.trainer.run
        part = fiedler_partition(run._frame_map, variant=variant)
        assert f["fiedler_side"] == part.side.astype(int).tolist()
        assert f["history"]["kappa"][-1] == pytest.approx(fiedler_score(run._frame_map, part).kappa)
    assert client.post("/api/control/variant", json={"variant": "authors-grid"}).status_code == 400
