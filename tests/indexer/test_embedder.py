from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from indexer.checkpoint import ModelInfo, load_checkpoint, read_checkpoint, save_checkpoint
from indexer.detect import make_detector
from indexer.embedder import Embedder, load_embedder
from indexer.errors import ModelNotFound
from indexer.model import EmbeddingNet, strip_classifier
from indexer.pipeline import FacePipeline


@pytest.fixture(scope="module")
def crops(shared_data: Path) -> list[np.ndarray]:
    pipeline = FacePipeline(make_detector("haar"), crop_size=64)
    paths = sorted((shared_data / "lfw" / "Aaron_Eckhart").glob("*.jpg"))[:1]
    paths += sorted((shared_data / "lfw" / "George_W_Bush").glob("*.jpg"))[:7]
    return [pipeline.from_path(p).faces[0].crop for p in paths]


def test_embeddings_are_unit_vectors_of_the_checkpoint_size(model_path: Path, crops: list) -> None:
    embedder = load_embedder(model_path, device="cpu")
    vectors = embedder.embed(crops, batch_size=3)
    assert vectors.shape == (len(crops), 128) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 128)


def test_reduced_precision_agrees_with_fp32(model_path: Path, crops: list) -> None:
    fp32 = load_embedder(model_path, device="cpu", precision="fp32").embed(crops)
    bf16 = load_embedder(model_path, device="cpu", precision="bf16").embed(crops)
    cosine = (fp32 * bf16).sum(axis=1)
    assert cosine.min() >= 0.99, cosine


def test_checkpoint_round_trip_is_weights_only_and_fingerprinted(tmp_path: Path) -> None:
    torch.manual_seed(3)
    net = EmbeddingNet("resnet18", 32)
    net.eval()
    fp = save_checkpoint(tmp_path / "a.pt", net, 48, metrics={"top1": 0.5}, half=True)
    payload = torch.load(tmp_path / "a.pt", weights_only=True)
    assert payload["arch"] == "resnet18" and payload["input_size"] == 48
    model, info = load_checkpoint(tmp_path / "a.pt")
    assert info.fingerprint == fp and info.metrics == {"top1": 0.5} and info.embedding_dim == 32
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.nn.functional.cosine_similarity(model(x), net(x)).min() > 0.99
    save_checkpoint(tmp_path / "b.pt", net, 48, metrics={"top1": 0.6})
    assert load_checkpoint(tmp_path / "b.pt")[1].fingerprint != fp


def test_a_flip_averaging_model_sees_a_face_and_its_mirror_alike(
    tmp_path: Path, crops: list
) -> None:
    """The checkpoint says whether to sum a face's vector with its mirror image's; old ones
    (no such key) embed the crop alone, as before."""
    torch.manual_seed(5)
    net = EmbeddingNet("resnet18", 32).eval()
    save_checkpoint(tmp_path / "plain.pt", net, 64)
    save_checkpoint(tmp_path / "flip.pt", net, 64, extra={"flip_average": True})
    plain, flip = load_embedder(tmp_path / "plain.pt"), load_embedder(tmp_path / "flip.pt")
    assert not plain.info.flip_average and flip.info.flip_average
    mirrored = [np.ascontiguousarray(c[:, ::-1]) for c in crops]
    a, b = flip.embed(crops, batch_size=3), flip.embed(mirrored, batch_size=5)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    single, single_mirrored = plain.embed(crops), plain.embed(mirrored)
    assert np.abs(single - single_mirrored).max() > 1e-3
    expected = single_mirrored + single
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(a, expected, atol=1e-5)


def test_things_that_are_not_checkpoints_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="not found"):
        read_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelNotFound, match="junk.pt"):
        read_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ModelNotFound, match="not a facefind checkpoint"):
        read_checkpoint(tmp_path / "other.pt")


@pytest.mark.parametrize("arch", ["resnet18", "efficientnet_b0", "vgg11"])
def test_any_torchvision_classifier_can_be_the_backbone(arch: str) -> None:
    net = EmbeddingNet(arch, 16).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 16)


def test_strip_classifier_needs_a_linear_layer() -> None:
    with pytest.raises(ValueError, match="no final Linear"):
        strip_classifier(torch.nn.Conv2d(3, 3, 1))


def test_unknown_architecture_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'resnet5000'"):
        EmbeddingNet("resnet5000")


def test_imagenet_weights_that_cannot_be_downloaded_fail_clearly(tmp_path: Path) -> None:
    """No internet here: torchvision's download must turn into one sentence that says what to do."""
    env = {
        "TORCH_HOME": str(tmp_path / "torch-home"),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "PATH": "/usr/bin:/bin",
    }
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,identity,role\na.jpg,a,query\nb.jpg,a,gallery\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "indexer",
            "evaluate",
            str(manifest),
            "--root",
            ".",
            "--model",
            "imagenet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert (
        "ImageNet weights for resnet50" in proc.stderr and "could not be downloaded" in proc.stderr
    )
    assert "Traceback" not in proc.stderr


def test_embedder_runs_on_an_explicit_cpu_device(model_path: Path) -> None:
    net, info = load_checkpoint(model_path)
    embedder = Embedder(net, info, device="cpu", precision="fp32")
    assert embedder.device.type == "cpu" and embedder.precision == "float32"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error(model_path: Path) -> None:
    net, info = load_checkpoint(model_path)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        Embedder(net, info, device="cuda")


def test_the_callers_model_keeps_its_fp32_weights(model_path: Path) -> None:
    net, info = load_checkpoint(model_path)
    Embedder(net, info, device="cpu", precision="bf16")
    assert all(p.dtype == torch.float32 for p in net.parameters())


def test_compiled_embedder_agrees_with_eager_at_any_batch_size(
    model_path: Path, crops: list
) -> None:
    """Batches are padded to the compiled sizes and cut back: 3 and 40 crops are no sizes."""
    eager = load_embedder(model_path, device="cpu")
    compiled = load_embedder(model_path, device="cpu", compile=True)
    assert compiled.compiled and not eager.compiled
    many = crops * 5
    for batch, batch_size in ((crops[:1], 32), (crops[:3], 32), (many, 64)):
        cosine = (compiled.embed(batch, batch_size=batch_size) * eager.embed(batch)).sum(axis=1)
        assert cosine.shape == (len(batch),) and cosine.min() >= 0.99, cosine


def test_an_embedder_that_cannot_compile_runs_eagerly(
    model_path: Path, crops: list, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config.cpp, "cxx", ("/nonexistent/c++",))
    torch.manual_seed(2)
    info = ModelInfo(arch="resnet18", embedding_dim=16, input_size=64)
    embedder = Embedder(EmbeddingNet("resnet18", 16), info, device="cpu", compile=True)
    assert not embedder.compiled
    assert "torch.compile failed, the embedder runs eagerly" in caplog.text
    assert embedder.embed(crops[:2]).shape == (2, 16)
