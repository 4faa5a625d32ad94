"""ops/prompts.py: catalogue parsing (JSON and the YAML subset) and change detection.

The synthesiser is injected: these tests never run espeak-ng or sox.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from ops import prompts as gen
from sambung.ivr.speech import INDONESIAN_NUMBER_WORDS, NUMBER_PROMPT_DIR, RUPIAH_PROMPT


class FakeSynth:
    """Writes ``<voice>|<text>|<trim>`` as the file's content and counts its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bool]] = []

    def __call__(self, voice: str, text: str, trim: bool, dest: Path) -> None:
        self.calls.append((voice, text, trim))
        dest.write_bytes(f"{voice}|{text}|{trim}".encode())


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "sounds"
    en = root / "en_US_f_Allison"
    en.mkdir(parents=True)
    (root / "id").mkdir()
    return root, en


def run_sync(tree: tuple[Path, Path], prompts: list[gen.Prompt], synth: FakeSynth) -> gen.Outcome:
    root, en = tree
    return gen.sync(prompts, lambda lang: gen.language_dir(lang, root, en), synth)


# ---- the number words --------------------------------------------------------------------


def test_the_number_prompts_are_exactly_what_ivr_speech_says() -> None:
    cat = gen.check_catalogue(gen.NUMBERS, "NUMBERS")
    expected = {f"{NUMBER_PROMPT_DIR}/{w}" for w in INDONESIAN_NUMBER_WORDS} | {RUPIAH_PROMPT}
    assert set(cat) == expected
    for name, sentences in cat.items():
        assert "id" in sentences, name
        if name.startswith(NUMBER_PROMPT_DIR):
            assert sentences == {"id": name.rsplit("/", 1)[1]}  # the word says itself
    assert set(cat[RUPIAH_PROMPT]) == {"en", "id"}
    assert all(p.trim for p in gen.build_prompts(gen.NUMBERS, None))


# ---- the YAML subset ---------------------------------------------------------------------

GOOD_YAML = """\
# The flows' prompts
sambung/main-menu:
  en: For your balance, press 1. To talk to an agent, press 0.
  id: "Untuk saldo, tekan 1. Untuk berbicara dengan petugas, tekan 0."

sambung/after-hours:   # shown after five
  en: 'We''re closed: our hours are 8 to 17.'
  id: Kantor kami sudah tutup. Jam layanan
    kami pukul delapan sampai tujuh belas.
  ms: Pejabat kami telah ditutup.  # a comment
"""


def test_given_the_yaml_subset_when_parsed_then_it_reads_as_pyyaml_does() -> None:
    mine = gen.parse_simple_yaml(GOOD_YAML, "prompts.yaml")
    assert mine == yaml.safe_load(GOOD_YAML)
    assert mine["sambung/after-hours"]["en"] == "We're closed: our hours are 8 to 17."
    assert mine["sambung/after-hours"]["id"] == (
        "Kantor kami sudah tutup. Jam layanan kami pukul delapan sampai tujuh belas."
    )


BAD_YAML: list[tuple[str, str]] = [
    ("a:\n\ten: x\n", "tabs"),
    ("a:\n  en: x\n   id: y\n", "': '"),  # deeper: YAML goes on with en's sentence
    ("  en: x\n", "before any prompt name"),
    ("a: {en: x}\n", "alone on its line"),
    ("a:\n  en: [x, y]\n", "indicator"),
    ("a:\n  en: - x\n", "indicator"),
    ("a:\n  en: |\n    x\n", "indicator"),
    ("a:\n  en: Press 1: pay\n", "': '"),
    ("a:\n  en: yes\n", "number or boolean"),
    ("a:\n  en: 12\n", "number or boolean"),
    ("a:\n  no: x\n", "number or boolean"),
    ("a:\n  en: 'x\n", "unterminated"),
    ('a:\n  en: "x\n', "unterminated"),
    ('a:\n  en: "\\x41"\n', "escape"),
    ("a:\n  en: x\n  en: y\n", "appears twice"),
    ("a:\n  en: x\na:\n  id: y\n", "appears twice"),
    ("a:\n", "no sentences"),
    ("a:\n  en:\n", "on one line"),
    ("---\na:\n  en: x\n", "one document"),
    ("a:\n  en: x\n\n    y\n", "expected 2 spaces"),  # YAML would keep the blank line
    ("'a':\n  en: x\n", "plain key"),
]


@pytest.mark.parametrize(("text", "message"), BAD_YAML)
def test_given_yaml_outside_the_subset_then_an_error_with_file_and_line(
    text: str, message: str
) -> None:
    with pytest.raises(gen.CatalogueError, match=message) as err:
        gen.parse_simple_yaml(text, "flows/prompts.yaml")
    assert str(err.value).startswith("flows/prompts.yaml")


_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8).filter(
    lambda w: isinstance(yaml.safe_load(w), str)  # not yes, no, on, null...: YAML's own verdict
)
_sentence = st.lists(
    st.one_of(_words, st.sampled_from(["1.", "0,", "Rp", "(x)", "a-b", "x#y", "100%", "'s"])),
    min_size=1,
    max_size=8,
).map(" ".join)
_names = st.lists(_words, min_size=1, max_size=3).map("/".join)


@st.composite
def catalogues(draw: st.DrawFn) -> tuple[str, dict[str, dict[str, str]]]:
    cat = draw(
        st.dictionaries(
            _names,
            st.dictionaries(st.sampled_from(["en", "id", "ms"]), _sentence, min_size=1),
            min_size=1,
            max_size=4,
        )
    )
    indent = " " * draw(st.integers(1, 4))
    lines: list[str] = []
    for name, sentences in cat.items():
        lines.append(f"{name}:")
        for lang, text in sentences.items():
            style = draw(st.sampled_from(["plain", "single", "double"]))
            if style == "single" or (style == "plain" and not _plain_ok(text)):
                value = "'" + text.replace("'", "''") + "'"
            elif style == "double":
                value = json.dumps(text)
            else:
                value = text
            lines.append(f"{indent}{lang}: {value}")
        if draw(st.booleans()):
            lines.append("# a comment")
    return "\n".join(lines) + "\n", cat


def _plain_ok(text: str) -> bool:
    try:
        gen.parse_simple_yaml(f"a:\n  en: {text}\n", "t")
    except gen.CatalogueError:
        return False
    return True


@given(catalogues())
def test_property_the_subset_reads_like_pyyaml(case: tuple[str, dict[str, dict[str, str]]]) -> None:
    text, expected = case
    mine = gen.parse_simple_yaml(text, "t")
    assert mine == yaml.safe_load(text)
    # plain sentences are whitespace-normalised by check_catalogue, like espeak-ng would hear
    assert gen.check_catalogue(mine, "t") == {
        n: {lang: " ".join(s.split()) for lang, s in ss.items()} for n, ss in expected.items()
    }


@given(_sentence)
def test_property_a_plain_sentence_the_subset_accepts_is_the_same_string_in_pyyaml(
    text: str,
) -> None:
    doc = f"a:\n  en: {text}\n"
    try:
        mine = gen.parse_simple_yaml(doc, "t")
    except gen.CatalogueError:
        return  # refused: the author quotes it
    assert mine == yaml.safe_load(doc)


# ---- catalogue checks and JSON -----------------------------------------------------------


def test_given_a_json_catalogue_then_it_is_read(tmp_path: Path) -> None:
    f = tmp_path / "prompts.json"
    f.write_text(json.dumps({"sambung/x": {"en": "  Hello\n there ", "id": "Halo"}}))
    assert gen.load_catalogue(f) == {"sambung/x": {"en": "Hello there", "id": "Halo"}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected a mapping"),
        ({"../etc/passwd": {"en": "x"}}, "expected a sound name"),
        ({"/abs": {"en": "x"}}, "expected a sound name"),
        ({"sambung/x.wav": {"en": "x"}}, "without the extension"),
        ({"sambung/x": "hello"}, "expected {language: sentence}"),
        ({"sambung/x": {"english": "x"}}, "expected a code like en"),
        ({"sambung/x": {"en": ""}}, "expected a sentence"),
        ({"sambung/x": {"en": 12}}, "expected a sentence"),
    ],
)
def test_given_a_bad_catalogue_then_the_error_names_the_prompt(
    tmp_path: Path, data: object, message: str
) -> None:
    f = tmp_path / "prompts.json"
    f.write_text(json.dumps(data))
    with pytest.raises(gen.CatalogueError, match=message) as err:
        gen.load_catalogue(f)
    assert str(f) in str(err.value)


def test_given_broken_json_then_the_error_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "prompts.json"
    f.write_text('{\n "a": {"en": "x"},\n}\n')
    with pytest.raises(gen.CatalogueError, match=rf"{f}:3: not JSON"):
        gen.load_catalogue(f)


# ---- change detection --------------------------------------------------------------------

NUM = [gen.Prompt("sambung/num/satu", "id", "satu", trim=True)]
MENU = [
    gen.Prompt("sambung/main-menu", "en", "Press 1."),
    gen.Prompt("sambung/main-menu", "id", "Tekan 1."),
]


def test_given_an_empty_tree_when_synced_then_every_file_is_made_in_its_language_folder(
    tree: tuple[Path, Path],
) -> None:
    root, en = tree
    synth = FakeSynth()
    out = run_sync(tree, NUM + MENU, synth)
    assert out.summary() == "prompts: generated 3, kept 0"
    assert (root / "id/sambung/num/satu.wav").read_bytes() == b"id|satu|True"
    assert (en / "sambung/main-menu.wav").read_bytes() == b"en|Press 1.|False"
    assert (root / "id/sambung/main-menu.wav").read_bytes() == b"id|Tekan 1.|False"
    assert not list(root.rglob("*.tmp*"))
    manifest = json.loads((root / "id" / gen.MANIFEST).read_text())
    assert set(manifest["files"]) == {"sambung/num/satu.wav", "sambung/main-menu.wav"}


def test_given_nothing_changed_when_synced_again_then_nothing_is_made(
    tree: tuple[Path, Path],
) -> None:
    run_sync(tree, NUM + MENU, FakeSynth())
    synth = FakeSynth()
    out = run_sync(tree, NUM + MENU, synth)
    assert synth.calls == []
    assert out.summary() == "prompts: generated 0, kept 3"


def test_given_a_changed_sentence_then_only_that_file_is_made_again(
    tree: tuple[Path, Path],
) -> None:
    root, _ = tree
    run_sync(tree, NUM + MENU, FakeSynth())
    synth = FakeSynth()
    changed = [*NUM, MENU[0], gen.Prompt("sambung/main-menu", "id", "Tekan satu.")]
    out = run_sync(tree, changed, synth)
    assert synth.calls == [("id", "Tekan satu.", False)]
    assert out.summary() == "prompts: generated 1, kept 2"
    assert (root / "id/sambung/main-menu.wav").read_bytes() == b"id|Tekan satu.|False"


def test_given_a_deleted_or_empty_file_then_it_is_made_again(tree: tuple[Path, Path]) -> None:
    root, en = tree
    run_sync(tree, NUM + MENU, FakeSynth())
    (root / "id/sambung/num/satu.wav").unlink()
    (en / "sambung/main-menu.wav").write_bytes(b"")
    synth = FakeSynth()
    out = run_sync(tree, NUM + MENU, synth)
    assert {c[1] for c in synth.calls} == {"satu", "Press 1."}
    assert len(out.generated) == 2


def test_given_a_recording_in_place_of_our_file_then_it_is_left_alone_for_good(
    tree: tuple[Path, Path],
) -> None:
    root, _ = tree
    run_sync(tree, MENU, FakeSynth())
    recording = root / "id/sambung/main-menu.wav"
    recording.write_bytes(b"RIFF a real voice")
    changed = [MENU[0], gen.Prompt("sambung/main-menu", "id", "Tekan satu.")]
    for _ in range(2):
        synth = FakeSynth()
        out = run_sync(tree, changed, synth)
        assert synth.calls == []
        assert out.not_ours == [recording]
        assert recording.read_bytes() == b"RIFF a real voice"
    manifest = json.loads((root / "id" / gen.MANIFEST).read_text())
    assert "sambung/main-menu.wav" not in manifest["files"]


def test_given_a_file_we_did_not_make_then_it_is_kept(tree: tuple[Path, Path]) -> None:
    _, en = tree
    (en / "sambung").mkdir()
    (en / "sambung/welcome.wav").write_bytes(b"ops/sandbox made me")
    synth = FakeSynth()
    out = run_sync(tree, [gen.Prompt("sambung/welcome", "en", "Welcome!")], synth)
    assert synth.calls == []
    assert out.summary() == "prompts: generated 0, kept 1 (of which 1 not ours, left alone)"


def test_given_a_new_recipe_then_files_are_made_again(
    tree: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_sync(tree, NUM, FakeSynth())
    monkeypatch.setattr(gen, "RECIPE", gen.RECIPE + "-louder")
    synth = FakeSynth()
    run_sync(tree, NUM, synth)
    assert len(synth.calls) == 1


def test_given_synthesis_fails_then_no_file_or_temporary_is_left_and_done_ones_are_recorded(
    tree: tuple[Path, Path],
) -> None:
    root, _ = tree

    def failing(voice: str, text: str, trim: bool, dest: Path) -> None:
        if text == "Tekan 1.":
            dest.write_bytes(b"half")
            raise gen.SynthesisError("sox failed (2): boom")
        dest.write_bytes(text.encode())

    with pytest.raises(gen.SynthesisError):
        run_sync(tree, NUM + MENU, failing)  # type: ignore[arg-type]
    assert not (root / "id/sambung/main-menu.wav").exists()
    assert not list(root.rglob("*.tmp*"))
    synth = FakeSynth()
    run_sync(tree, NUM + MENU, synth)
    assert "satu" not in [c[1] for c in synth.calls]  # made before the failure, recorded


def test_given_a_corrupt_manifest_then_our_files_count_as_not_ours(
    tree: tuple[Path, Path],
) -> None:
    root, _ = tree
    run_sync(tree, NUM, FakeSynth())
    (root / "id" / gen.MANIFEST).write_text("{not json")
    synth = FakeSynth()
    out = run_sync(tree, NUM, synth)
    assert synth.calls == []  # safe side: never overwrite what we cannot prove is ours
    assert len(out.not_ours) == 1


# ---- command line ------------------------------------------------------------------------


def test_main_reads_numbers_and_a_catalogue_and_prints_one_line(
    tree: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, en = tree
    cat = tmp_path / "prompts.yaml"
    cat.write_text("sambung/main-menu:\n  en: Press 1.\n  id: Tekan 1.\n")
    argv = ["--sounds-root", str(root), "--english-dir", str(en), "--catalogue", str(cat)]
    synth = FakeSynth()
    assert gen.main(argv, synth) == 0
    n = len(INDONESIAN_NUMBER_WORDS) + 2 + 2  # words, rupiah en+id, menu en+id
    out = capsys.readouterr().out
    assert out.startswith(f"prompts: generated {n}, kept 0 [")
    assert out.count("\n") == 1
    assert (en / "sambung/rupiah.wav").exists()
    assert gen.main(argv, FakeSynth()) == 0
    assert capsys.readouterr().out.startswith(f"prompts: generated 0, kept {n} [")


def test_main_refuses_a_bad_catalogue_with_status_2(
    tree: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, en = tree
    cat = tmp_path / "prompts.yaml"
    cat.write_text("sambung/main-menu:\n  en: yes\n")
    argv = ["--sounds-root", str(root), "--english-dir", str(en), "--catalogue", str(cat)]
    synth = FakeSynth()
    assert gen.main(argv, synth) == 2
    assert synth.calls == []
    assert f"{cat}:2:" in capsys.readouterr().err


def test_main_reports_a_synthesis_failure_with_status_1(
    tree: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, en = tree

    def broken(voice: str, text: str, trim: bool, dest: Path) -> None:
        raise gen.SynthesisError("cannot run espeak-ng: not found")

    cat = tmp_path / "prompts.json"
    cat.write_text("{}")
    argv = ["--sounds-root", str(root), "--english-dir", str(en), "--catalogue", str(cat)]
    assert gen.main(argv, broken) == 1
    assert "espeak-ng" in capsys.readouterr().err


def test_main_refuses_a_language_folder_that_is_a_symlink(
    tree: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, en = tree
    (root / "en_US").symlink_to("/etc/alternatives/asterisk-prompt-en-us")
    cat = tmp_path / "prompts.json"
    cat.write_text(json.dumps({"sambung/x": {"en_US": "Hello"}}))
    argv = ["--sounds-root", str(root), "--english-dir", str(en), "--catalogue", str(cat)]
    synth = FakeSynth()
    assert gen.main(argv, synth) == 2
    assert synth.calls == []
    assert "symlink" in capsys.readouterr().err


def test_the_example_catalogue_reads_as_pyyaml_reads_it() -> None:
    if not gen.DEFAULT_CATALOGUE.is_file():
        pytest.skip(f"no {gen.DEFAULT_CATALOGUE}")
    mine = gen.load_catalogue(gen.DEFAULT_CATALOGUE)
    theirs = yaml.safe_load(gen.DEFAULT_CATALOGUE.read_text(encoding="utf-8"))
    assert mine == theirs
    assert all(set(sentences) == {"en", "id"} for sentences in mine.values())
