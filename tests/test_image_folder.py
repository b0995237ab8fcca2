"""Your own images: a folder of real image files written on disk (scikit-learn's digits as RGB PNGs
in class folders, JPEGs of odd sizes, grey and RGBA files) is read the way the official loader
reads it, trains an RGB preset from `adm-edu-train --data-dir`, samples into a folder of PNGs and
is scored by `adm-edu-eval --reference`; each bad folder is one line.

The Inception path runs with a randomly initialised `InceptionV3FID` whose state dict the test
writes to a file: pytorch-fid's real weights cannot be downloaded here (and never are in tests)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from adm_edu.cli import evaluate, parse_classes, sample_cli, train
from adm_edu.data import (
    FolderImages,
    center_crop_arr,
    digits,
    folder_classes,
    image_folder,
    load_dataset,
)
from adm_edu.errors import BadArgument
from adm_edu.metrics import InceptionV3FID
from adm_edu.sampling import to_uint8
from script_run import as_user_sees


@pytest.fixture(autouse=True)
def _one_thread_no_cache(tmp_path, monkeypatch):
    "One thread; an empty cache, so no Inception weights are found unless a test gives them."
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def official_center_crop_arr(pil_image, image_size):
    "guided-diffusion's `image_datasets.center_crop_arr`, verbatim: the reference."
    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(
        tuple(round(x * scale) for x in pil_image.size), resample=Image.BICUBIC
    )
    arr = np.array(pil_image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return arr[crop_y : crop_y + image_size, crop_x : crop_x + image_size]


def digit_rgb(i: int, side: int) -> np.ndarray:
    "Digit `i` of scikit-learn's set as an RGB uint8 image of `side` pixels (nearest upsampling)."
    x = to_uint8(digits('all').images[i : i + 1])[0, ..., 0]
    x = x.repeat(side // 8, 0).repeat(side // 8, 1)
    return np.stack([x, x[::-1], 255 - x], -1)


def write_folder(root, n_per_class=4, classes=('cat', 'dog', 'owl')):
    "Real files: RGB PNGs in class folders, plus JPEGs of odd sizes; returns the folder."
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for j in range(n_per_class):
            img = Image.fromarray(digit_rgb(c * n_per_class + j, 40))
            img.save(root / name / f'{name}_{j}.png')
    Image.fromarray(digit_rgb(20, 64)[:45, :61]).save(root / 'cat' / 'cat_odd.jpg', quality=90)
    Image.fromarray(digit_rgb(21, 80)[:70]).save(root / 'owl' / 'owl_odd.jpeg', quality=90)
    return root


def one_line(func, *argv, contains=''):
    code, _, err = as_user_sees(func, *argv)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and 'Traceback' not in err, err
    assert lines[0].startswith(func.prog + ': ') and contains in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize('size', [(64, 64), (61, 45), (33, 90), (20, 12), (128, 31)])
def test_center_crop_is_the_official_one(size):
    rng = np.random.default_rng(sum(size))
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    np.testing.assert_array_equal(center_crop_arr(img, 16), official_center_crop_arr(img, 16))


def test_folder_labels_classes_and_lazy_decoding(tmp_path, monkeypatch):
    root = write_folder(tmp_path / 'imgs')
    decoded = []
    decode = FolderImages.decode
    monkeypatch.setattr(FolderImages, 'decode', lambda s, i: decoded.append(i) or decode(s, i))
    ds = load_dataset('folder', path=root, size=32)
    assert decoded == [] and ds.images.shape == (14, 3, 32, 32)  # nothing decoded yet
    assert ds.classes == ('cat', 'dog', 'owl') and ds.labels.bincount().tolist() == [5, 4, 5]
    by_name = image_folder(root, 32, class_from='filename')
    assert by_name.classes == ds.classes and by_name.labels.tolist() == ds.labels.tolist()
    x, y = ds[torch.tensor([0, 13])]
    assert len(decoded) == 2 and x.shape == (2, 3, 32, 32) and y.tolist() == [0, 2]
    # the pixels are the official crop of the file, scaled to [-1, 1]
    ref = official_center_crop_arr(Image.open(ds.images.files[0]).convert('RGB'), 32)
    np.testing.assert_allclose(((x[0].permute(1, 2, 0) + 1) * 127.5).numpy(), ref, atol=1e-3)
    assert image_folder(root, 32, class_from='none').classes == ()
    grey = image_folder(root, 8, channels=1)
    assert grey.images[torch.arange(3)].shape == (3, 1, 8, 8)
    assert 'converted to L: 14 RGB' in grey.notes


def test_stated_conversions(tmp_path):
    "Mixed grey/RGB/RGBA and images smaller than the preset: converted, said and counted."
    root = tmp_path / 'mixed' / 'a'
    root.mkdir(parents=True)
    rgb = digit_rgb(0, 16)
    Image.fromarray(rgb).save(root / 'rgb.png')
    Image.fromarray(rgb[..., 0]).save(root / 'grey.png')
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])).save(root / 'a.png')
    ds = image_folder(root.parent, 32)
    notes = ' | '.join(ds.notes)
    assert '3 of 3 images are smaller than 32 px' in notes, notes
    assert 'converted to RGB (alpha dropped): 1 L, 1 RGBA' in notes, notes
    x = ds.images[torch.arange(3)]
    assert x.shape == (3, 3, 32, 32) and torch.isfinite(x).all()


def test_class_names_in_sample_classes():
    names = ['cat', 'dog', 'owl']
    assert parse_classes('owl,0', 4, 3, names).tolist() == [2, 0, 2, 0]
    with pytest.raises(BadArgument, match="class indices such as 0,3,7, got 'eel'"):
        parse_classes('eel', 4, 3, names)


def test_bad_folders_are_one_line(tmp_path):
    "Point 6 of the issue: each bad folder is one line before any training."
    empty = tmp_path / 'empty'
    empty.mkdir()
    args = ('--preset', 'rgb-32', '--epochs', 1, '--bs', 2, '--device', 'cpu')
    one_line(train, '--data-dir', empty, *args, '--out', tmp_path / 'r0', contains='without image')
    one_line(train, '--data-dir', tmp_path / 'nope', *args, contains='not a folder')
    flat = tmp_path / 'flat'
    flat.mkdir()
    Image.fromarray(digit_rgb(0, 32)).save(flat / 'a.png')
    one_line(train, '--data-dir', flat, '--class-from', 'filename', *args, contains="before the")
    one_line(train, '--data-dir', flat, *args, contains='sub-folder')
    one_line(train, '--data-dir', flat, '--class-from', 'x', *args, contains='--class-from must')
    bad = write_folder(tmp_path / 'bad', n_per_class=1)
    (bad / 'dog' / 'dog_notes.png').write_text('this is not a PNG')
    one_line(train, '--data-dir', bad, *args, '--out', tmp_path / 'r1', contains='not readable')
    one_line(train, '--data-dir', bad, '--dataset', 'digits', *args, contains='--data-dir')
    assert folder_classes(bad) == ('cat', 'dog', 'owl')


def test_folder_train_sample_eval(tmp_path):
    "`adm-edu-train --data-dir` -> `adm-edu-sample --out DIR/` -> `adm-edu-eval --reference DIR`."
    root = write_folder(tmp_path / 'imgs', n_per_class=2)
    Image.fromarray(digit_rgb(30, 24)[..., 0]).save(root / 'dog' / 'dog_small_grey.png')
    run = tmp_path / 'run'
    code, out, err = as_user_sees(
        train,
        *('--data-dir', root, '--preset', 'rgb-32', '--epochs', 1, '--bs', 4, '--flip'),
        *('--diffusion-steps', 50, '--max-seconds', 30, '--out', run, '--device', 'cpu'),
    )
    assert code == 0, err
    ck = torch.load(run / 'model.pt', weights_only=True)
    assert ck['network']['classes'] == ['cat', 'dog', 'owl']
    assert ck['network']['kwargs']['num_classes'] == 3 and ck['config']['options']['flip']
    notes = ck['network']['data_notes']  # stated and recorded: the small grey image
    assert notes == [
        '1 of 9 images are smaller than 32 px on their short side: upscaled with BICUBIC '
        '(as the official center_crop_arr)',
        'converted to RGB: 1 L',
    ], notes
    assert f'{root}: converted to RGB: 1 L' in out
    samples = tmp_path / 'samples'
    argv = ('--model', run / 'model.pt', '--n', 6, '--steps', 2, '--device', 'cpu')
    code, _, err = as_user_sees(sample_cli, *argv, '--classes', 'owl,dog', '--out', f'{samples}/')
    assert code == 0, err
    names = sorted(p.name for p in samples.iterdir())
    assert names == [f'{c}_{i:06d}.png' for c, i in [('dog', 1), ('dog', 3), ('dog', 5)]] + [
        f'owl_{i:06d}.png' for i in (0, 2, 4)
    ]
    assert image_folder(samples, 32, class_from='filename').classes == ('dog', 'owl')
    code, _, err = as_user_sees(sample_cli, *argv, '--out', tmp_path / 's.npz')
    f = np.load(tmp_path / 's.npz')
    assert code == 0 and f['arr_0'].shape == (6, 32, 32, 3) and f['arr_0'].dtype == np.uint8
    np.testing.assert_array_equal(f['arr_0'], f['images'])
    # no Inception weights in the (empty) cache: one line saying where to put which file
    ev = ('--samples', samples, '--reference', root, '--device', 'cpu')
    one_line(evaluate, *ev, '--out', tmp_path / 'm0.json', contains='pt_inception-2015-12-05')
    weights = tmp_path / 'inception-random.pt'  # random weights: the real ones are not here
    torch.save(InceptionV3FID().state_dict(), weights)
    code, out, err = as_user_sees(
        evaluate, *ev, '--inception-weights', weights, '--out', tmp_path / 'm.json'
    )
    assert code == 0, err
    m = json.loads((tmp_path / 'm.json').read_text())['metrics']
    assert m['extractor'] == 'inception' and m['n'] == 6 and m['n_real'] == 9
    assert np.isfinite(m['fid']) and 0 <= m['precision'] <= 1 and 'fid=' in out


def test_eval_reads_the_official_npz_layout(tmp_path):
    "`arr_0` batches (the official evaluator's) for samples and reference: grey, own network."
    x = to_uint8(digits('all', size=32).images[:40])  # uint8 N×32×32×1
    np.savez(tmp_path / 'ref.npz', arr_0=x[:30])
    np.savez(tmp_path / 'samples.npz', arr_0=x[30:])
    ev = ('--samples', tmp_path / 'samples.npz', '--reference', tmp_path / 'ref.npz')
    code, out, err = as_user_sees(evaluate, *ev, '--out', tmp_path / 'm.json', '--device', 'cpu')
    assert code == 0, err
    m = json.loads((tmp_path / 'm.json').read_text())['metrics']
    assert m['extractor'] == 'fmnist' and (m['n'], m['n_real']) == (10, 30)
    one_line(evaluate, '--samples', tmp_path / 'samples.npz', '--reference', tmp_path / 'no.npz')
