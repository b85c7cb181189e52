#!/usr/bin/env python3
"""Make the ONNX Runtime reference outputs the tests compare aquant with (run once; outputs are committed).

    python3 -m pip install -r scripts/requirements.txt -r scripts/requirements-reference.txt
    python3 scripts/make_reference.py

Writes tests/reference/: <model>_logits16.npy (logits of the first 16 rows), <model>_top1.npy (top-1 of every
row), photos_mobilenet_v2_top1.npy and _logits.npy (the 20 photos with the PIL resize-256/centre-crop-224
transform), photos_first_input.npy (that transform's tensor for the first photo), and the first photo as
Pillow decodes it (photo_00_pil_decoded.png) with its transformed tensor.
"""
import os

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(ROOT, "assets")
OUT = os.path.join(ROOT, "tests", "reference")
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(1, 3, 1, 1)


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run(sess, x, batch=32):
    return np.concatenate([sess.run(None, {"input": x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def imagenet_rows():
    u8 = np.load(os.path.join(ASSETS, "imagenet", "val_u8.npy"))
    return (u8.astype(np.float32) * np.float32(1 / 255) - MEAN) / STD


def photo_tensor(path):
    image = Image.open(path).convert("RGB")
    w, h = image.size
    short = min(w, h)
    size = (256, int(h * 256 / short)) if w <= h else (int(w * 256 / short), 256)
    image = image.resize(size, Image.BILINEAR)
    w, h = image.size
    left, top = int(round((w - 224) / 2)), int(round((h - 224) / 2))
    image = image.crop((left, top, left + 224, top + 224))
    x = np.asarray(image, dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
    return ((x - MEAN) / STD).astype(np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = {
        "mnist_cnn": ("mnist_cnn/mnist_cnn.onnx", np.load(os.path.join(ASSETS, "mnist_cnn", "val_x.npy")),
                      np.load(os.path.join(ASSETS, "mnist_cnn", "val_y.npy"))),
    }
    rows, labels = imagenet_rows(), np.load(os.path.join(ASSETS, "imagenet", "val_y.npy"))
    for name in ("mobilenet_v2", "efficientnet_lite0"):
        cases[name] = (f"imagenet/{name}.onnx", rows, labels)
    for name, (model, x, y) in cases.items():
        logits = run(session(os.path.join(ASSETS, model)), x)
        top1 = logits.argmax(axis=1).astype(np.int64)
        np.save(os.path.join(OUT, f"{name}_logits16.npy"), logits[:16].astype(np.float32))
        np.save(os.path.join(OUT, f"{name}_top1.npy"), top1)
        print(f"{name}: top-1 {np.mean(top1 == y):.4f} on {len(y)} rows")

    photos_dir = os.path.join(ASSETS, "imagenet", "photos")
    photos = sorted(f for f in os.listdir(photos_dir) if f.lower().endswith((".jpg", ".jpeg", ".png")))
    tensors = np.concatenate([photo_tensor(os.path.join(photos_dir, f)) for f in photos])
    logits = run(session(os.path.join(ASSETS, "imagenet", "mobilenet_v2.onnx")), tensors)
    top1 = logits.argmax(axis=1)
    np.save(os.path.join(OUT, "photos_mobilenet_v2_logits.npy"), logits.astype(np.float32))
    labels = np.array([int(f.rsplit("_", 1)[1].split(".")[0]) for f in photos])
    np.save(os.path.join(OUT, "photos_mobilenet_v2_top1.npy"), top1.astype(np.int64))
    np.save(os.path.join(OUT, "photos_first_input.npy"), tensors[:1])
    # The first photo as Pillow decodes it, stored losslessly: separates the transform (which must match
    # Pillow exactly) from JPEG decoding (where decoders may differ by a unit).
    decoded = os.path.join(OUT, "photo_00_pil_decoded.png")
    Image.open(os.path.join(photos_dir, photos[0])).convert("RGB").save(decoded)
    np.save(os.path.join(OUT, "photo_00_pil_decoded_input.npy"), photo_tensor(decoded))
    print(f"photos: mobilenet_v2 top-1 {np.mean(top1 == labels):.4f} on {len(photos)} photos")
    print(f"onnxruntime {ort.__version__}")


if __name__ == "__main__":
    main()
