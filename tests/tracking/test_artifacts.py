import os

import pytest

from tracemark.exceptions import InvalidArtifactPathError, InvalidInputError, NotFoundError


def test_log_and_read_back_every_kind(tracking, tmp_path):
    tm = tracking
    src = tmp_path / "notes.txt"
    src.write_text("hello")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    with tm.start_run() as run:
        tm.log_artifact(src)
        tm.log_artifact(src, artifact_path="docs")
        tm.log_artifacts(folder, artifact_path="data")
        tm.log_text("some text", "out/answer.txt")
        tm.log_dict({"model": "x", "k": [1, 2]}, "config.json")
        tm.log_dict({"model": "x"}, "config.yaml")
    listing = tm.list_artifacts(run_id=run.run_id)
    assert [(f.path, f.is_dir) for f in listing] == [
        ("data", True),
        ("docs", True),
        ("out", True),
        ("config.json", False),
        ("config.yaml", False),
        ("notes.txt", False),
    ]
    assert [f.path for f in tm.list_artifacts("data", run_id=run.run_id)] == [
        "data/sub",
        "data/a.txt",
    ]
    assert tm.load_text("out/answer.txt", run_id=run.run_id) == "some text"
    assert tm.load_dict("config.json", run_id=run.run_id) == {"model": "x", "k": [1, 2]}
    assert tm.load_dict("config.yaml", run_id=run.run_id) == {"model": "x"}
    local = tm.download_artifacts("data", run_id=run.run_id, dst_path=tmp_path / "dl")
    with open(os.path.join(local, "sub", "b.txt")) as fh:
        assert fh.read() == "b"


def test_log_image_from_numpy_and_pil(tracking):
    np = pytest.importorskip("numpy")
    image_module = pytest.importorskip("PIL.Image")
    tm = tracking
    with tm.start_run() as run:
        tm.log_image(np.zeros((4, 5, 3), dtype=np.uint8), "images/black.png")
        tm.log_image(image_module.new("RGB", (3, 2)), "images/pil.png")
        with pytest.raises(InvalidInputError, match="shape"):
            tm.log_image(np.zeros((2, 2, 7)), "bad.png")
    sizes = {f.path: f.file_size for f in tm.list_artifacts("images", run_id=run.run_id)}
    assert set(sizes) == {"images/black.png", "images/pil.png"}
    assert all(size > 0 for size in sizes.values())


@pytest.mark.parametrize(
    "bad", ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "~/x", "a/../..", "C:/x"]
)
def test_artifact_paths_cannot_escape(tracking, tmp_path, bad):
    tm = tracking
    with tm.start_run() as run, pytest.raises(InvalidArtifactPathError):
        tm.log_text("x", bad)
    assert not (tmp_path / "escape.txt").exists()
    with pytest.raises(InvalidArtifactPathError):
        tm.load_text(bad, run_id=run.run_id)


def test_symlink_pointing_out_is_refused(tracking, tmp_path):
    tm = tracking
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    with tm.start_run() as run:
        tm.log_text("x", "keep.txt")
    root = tm.get_run(run.run_id).artifact_uri
    os.symlink(outside, os.path.join(root, "link"))
    with pytest.raises(InvalidArtifactPathError):
        tm.load_text("link/secret.txt", run_id=run.run_id)
    with pytest.raises(InvalidArtifactPathError):
        tm.TracemarkClient().log_text(run.run_id, "pwned", "link/new.txt")
    assert not (outside / "new.txt").exists()
    with pytest.raises(InvalidArtifactPathError):
        tm.download_artifacts("", run_id=run.run_id, dst_path=tmp_path / "dl")


def test_missing_artifact_and_local_file(tracking, tmp_path):
    tm = tracking
    with tm.start_run() as run, pytest.raises(NotFoundError, match="nope.txt"):
        tm.log_artifact(tmp_path / "nope.txt")
    with pytest.raises(NotFoundError, match="missing.txt"):
        tm.load_text("missing.txt", run_id=run.run_id)


def test_log_table_appends_and_load_table_compares_runs(tracking):
    tm = tracking
    tm.set_experiment("tables")
    ids = []
    for model in ("a", "b"):
        with tm.start_run(run_name=model) as run:
            tm.log_param("model", model)
            tm.log_table({"question": ["q1", "q2"], "answer": [f"{model}1", f"{model}2"]}, "p.json")
            tm.log_table({"question": ["q3"], "answer": [f"{model}3"], "score": [1]}, "p.json")
        ids.append(run.run_id)
    frame = tm.load_table("p.json", extra_columns=["run_id", "params.model"])
    assert len(frame) == 6
    assert list(frame.columns) == ["question", "answer", "score", "run_id", "params.model"]
    by_run = frame[frame["run_id"] == ids[0]]
    assert list(by_run["answer"]) == ["a1", "a2", "a3"]
    assert set(frame["params.model"]) == {"a", "b"}
    only_b = tm.load_table("p.json", run_ids=[ids[1]])
    assert list(only_b["answer"]) == ["b1", "b2", "b3"]


def test_log_table_from_dataframe_and_bad_tables(tracking):
    pd = pytest.importorskip("pandas")
    tm = tracking
    with tm.start_run() as run:
        tm.log_table(pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}), "df.json")
        with pytest.raises(InvalidInputError, match="differ in length"):
            tm.log_table({"x": [1, 2], "y": [1]}, "bad.json")
        with pytest.raises(InvalidInputError):
            tm.log_table([], "bad.json")
    frame = tm.load_table("df.json", run_ids=[run.run_id])
    assert frame.to_dict("list") == {"x": [1, 2], "y": ["a", "b"]}
    with pytest.raises(NotFoundError, match="nothing.json"):
        tm.load_table("nothing.json")
