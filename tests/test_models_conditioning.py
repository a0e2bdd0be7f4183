"""Speaker/emotion conditioning: lookup, sites, sharing, gradients, ``none`` and the config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from factories import random_batch, tiny_config

from vc_toolkit.config import ConfigError, build, load_tag
from vc_toolkit.config.core import pinned_dict
from vc_toolkit.config.tag import SITES, Conditioning, TagConfig
from vc_toolkit.data.labels import ID_KEYS, SpeakerTable
from vc_toolkit.models import CONDITIONING, build_model
from vc_toolkit.models.conditioning import EmbeddingConditioning

REPO = Path(__file__).resolve().parents[1]
TABLE = SpeakerTable(speakers=["a", "b", "c"], emotions=["neutral", "happy"])
FRAMES = dict(src_frames=[8, 6], tgt_frames=[10, 6], n_segs=[2, 1])
BASE = {"src_spk": [0, 1], "tgt_spk": [2, 2], "src_emo": [0, 0], "tgt_emo": [0, 0]}
PREDICTED = ("log_duration", "pitch", "energy")
MELS = ("mel", "post_mel")


def _model(sites=("encoder",), share=True, emotion=False, seed=0):
    cond = Conditioning(type="embedding", dim=4, sites=list(sites), share=share, emotion=emotion)
    torch.manual_seed(seed)
    return build_model(tiny_config(conditioning=cond), n_mels=4, reduction_factor=2, speakers=TABLE)


def _batch(**changes):
    return random_batch(4, 2, **FRAMES, seed=3, ids={**BASE, **changes})


def _changed(a: dict, b: dict) -> set[str]:
    return {k for k in (*PREDICTED, *MELS) if not torch.equal(a[k], b[k])}


@pytest.mark.parametrize("emotion", [False, True])
@pytest.mark.parametrize("share", [True, False])
@pytest.mark.parametrize("site", SITES)
def test_ids_change_exactly_what_the_site_feeds(site, share, emotion):
    model = _model([site], share, emotion)
    base = model(_batch())
    expected = {
        "encoder": {*PREDICTED, *MELS},
        "adaptor": set(PREDICTED),  # teacher forcing: the mel sees targets, not predictions
        "decoder": set(MELS),
    }[site]
    assert _changed(base, model(_batch(tgt_spk=[1, 0]))) == expected
    assert _changed(base, model(_batch(src_spk=[2, 2]))) == expected
    assert _changed(base, model(_batch(tgt_emo=[1, 1]))) == (expected if emotion else set())
    assert _changed(base, model(_batch())) == set()


def test_source_and_target_are_not_interchangeable_with_a_shared_table():
    model = _model(share=True)
    swapped = model(_batch(src_spk=[2, 2], tgt_spk=[0, 1]))
    assert not torch.equal(model(_batch())["mel"], swapped["mel"])


@pytest.mark.parametrize(
    "share, emotion, tables",
    [
        (True, False, {"speaker.weight": (3, 4)}),
        (False, False, {"src_speaker.weight": (3, 4), "tgt_speaker.weight": (3, 4)}),
        (True, True, {"speaker.weight": (3, 4), "emotion.weight": (2, 4)}),
        (
            False,
            True,
            {
                "src_speaker.weight": (3, 4),
                "tgt_speaker.weight": (3, 4),
                "src_emotion.weight": (2, 4),
                "tgt_emotion.weight": (2, 4),
            },
        ),
    ],
)
def test_tables_are_sized_by_the_speaker_table(share, emotion, tables):
    model = _model(["encoder", "decoder"], share, emotion)
    names = {k: tuple(v.shape) for k, v in model.conditioning.state_dict().items()}
    width = 4 * (4 if emotion else 2)  # src and tgt rows of every looked-up kind
    assert names == {
        **tables,
        "proj.encoder.weight": (16, width),
        "proj.encoder.bias": (16,),
        "proj.decoder.weight": (16, width),
        "proj.decoder.bias": (16,),
    }
    kinds = {k: ("emotions" if "emotion" in k else "speakers") for k in tables}
    assert model.embedding_tables() == {f"conditioning.{k}": v for k, v in kinds.items()}


@pytest.mark.parametrize("share", [True, False])
def test_gradients_reach_only_the_rows_used(share):
    model = _model(list(SITES), share, emotion=True)
    out = model(_batch(tgt_emo=[1, 1]))
    (out["post_mel"].sum() + out["pitch"].sum() + out["log_duration"].sum()).backward()
    grads = {n: p.grad for n, p in model.conditioning.named_parameters()}
    used = {  # rows looked up: src a, b; tgt c; src emotion 0; tgt emotion 1
        "speaker.weight": {0, 1, 2},
        "src_speaker.weight": {0, 1},
        "tgt_speaker.weight": {2},
        "emotion.weight": {0, 1},
        "src_emotion.weight": {0},
        "tgt_emotion.weight": {1},
    }
    for name, rows in used.items():
        if name in grads:
            nonzero = {i for i, row in enumerate(grads[name]) if row.abs().sum() > 0}
            assert nonzero == rows, name
    assert all(grads[f"proj.{site}.weight"].abs().sum() > 0 for site in SITES)


def test_padded_positions_stay_zero():
    module = EmbeddingConditioning(6, Conditioning(type="embedding", dim=3), TABLE)
    x = torch.zeros(2, 5, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    y = module(x, mask, "encoder", {"tgt_spk": torch.tensor([1, 2])})
    assert torch.all(y[0, 3:] == 0) and torch.all(y[0, :3] != 0)
    assert module(x, mask, "decoder", None) is x  # a site not listed is left alone


def test_infer_takes_cond_and_missing_ids_are_zero():
    model = _model(["encoder", "decoder"], emotion=True)
    batch = _batch()
    args = (batch.src_mel, batch.src_lf0, batch.src_energy, batch.src_lens)
    zeros = {key: torch.zeros(2, dtype=torch.long) for key in ID_KEYS}
    plain = model.infer(*args)["mel"]
    assert torch.equal(plain, model.infer(*args, cond=zeros)["mel"])
    assert torch.equal(plain, model.infer(*args, cond={"src_spk": zeros["src_spk"]})["mel"])
    other = model.infer(*args, cond={"tgt_spk": torch.tensor([1, 1])})["mel"]
    assert other.shape != plain.shape or not torch.equal(other, plain)
    with pytest.raises(ValueError, match=r"cond\['tgt_spk'\] holds ids \[0, 3\].* 3 rows") as err:
        model.infer(*args, cond={"tgt_spk": torch.tensor([0, 3])})
    assert len(str(err.value).splitlines()) == 1


def test_none_has_no_parameters_and_ignores_ids_and_settings():
    torch.manual_seed(0)
    plain = build_model(tiny_config(), 4, 2)
    ignored = Conditioning(type="none", dim=9, sites=["decoder"], share=False, emotion=True)
    torch.manual_seed(0)
    other = build_model(tiny_config(conditioning=ignored), 4, 2, speakers=TABLE)
    assert list(plain.conditioning.parameters()) == [] and plain.embedding_tables() == {}
    assert not any(k.startswith("conditioning") for k in plain.state_dict())
    theirs = other.state_dict()
    assert list(plain.state_dict()) == list(theirs)
    assert all(torch.equal(v, theirs[k]) for k, v in plain.state_dict().items())
    with_ids = plain(_batch(tgt_spk=[1, 0], src_emo=[1, 1]))
    without = plain(random_batch(4, 2, **FRAMES, seed=3))
    assert all(torch.equal(with_ids[k], without[k]) for k in (*PREDICTED, *MELS))


def test_a_one_to_one_model_defaults_to_src_and_tgt_rows():
    cond = Conditioning(type="embedding", dim=2)
    model = build_model(tiny_config(conditioning=cond), 4, 2)
    assert model.speakers.speakers == ["src", "tgt"]
    assert tuple(model.conditioning.speaker.weight.shape) == (2, 2)


def test_registry_offers_exactly_the_config_choices():
    literal = Conditioning.__dataclass_fields__["type"].type
    assert set(CONDITIONING.choices()) == {"none", "embedding"}
    assert all(f"'{c}'" in literal for c in CONDITIONING.choices())


@pytest.mark.parametrize(
    "block, message",
    [
        ({"type": "embedding", "sites": []}, "model.conditioning.sites is empty; list at least"),
        ({"type": "embedding", "sites": ["decoder", "decoder"]}, "repeats a site"),
        ({"type": "embedding", "sites": ["postnet"]}, "model.conditioning.sites"),
        ({"type": "lookup"}, "model.conditioning.type"),
        ({"type": "embedding", "dim": 0}, "model.conditioning.dim' must be >= 1"),
    ],
)
def test_bad_conditioning_blocks_are_one_line_errors(block, message):
    with pytest.raises(ConfigError, match=message) as err:
        build(TagConfig, {"spk": "x", "model": {"conditioning": block}}, where="t.yaml")
    assert len(str(err.value).splitlines()) == 1


def test_an_empty_site_list_is_fine_without_conditioning():
    cfg = build(TagConfig, {"spk": "x", "model": {"conditioning": {"sites": []}}})
    assert cfg.model.conditioning.type == "none"


ONE_TO_ONE_TAGS = sorted(
    p.stem for p in (REPO / "conf/tag").glob("demo_*.yaml") if load_tag(p.stem, REPO).spk == "demo"
)


@pytest.mark.parametrize("tag", ONE_TO_ONE_TAGS)
def test_the_shipped_one_to_one_tags_keep_their_model_and_fingerprint(tag):
    cfg = load_tag(tag, REPO)
    assert cfg.model.conditioning == Conditioning()  # type none: no parameters
    pinned = pinned_dict(cfg)
    assert "conditioning" not in pinned["model"]
    assert "speaker_init" not in (pinned.get("pretrain") or {})
