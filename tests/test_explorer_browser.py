"""The explorer page in a real browser (headless Chromium through Playwright), built by a tiny pipeline run, and pages
built here from made-up runs (by explorer.py's build_data and render_page, no pipeline run) for what the tiny run
cannot show: beam attention that differs from greedy, subword pieces grouped into words, odd whitespace.

Needs the ``playwright`` Python package and a Chromium at /usr/bin/chromium (Debian: ``apt-get install chromium``;
no browser download is needed or done; ``SEQ2SEQ_CHROMIUM`` names another path). Skipped, saying why, when either
is missing; with ``REQUIRE_BROWSER=1`` (as CI sets it) they fail instead, so that a CI run cannot pass without them.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import os
import random
import re
from pathlib import Path

import pytest

from helpers import TWO_MODELS
from seq2seq.explorer import EOS, WORD_START, Run, build_data, render_page

CHROMIUM = Path(os.environ.get("SEQ2SEQ_CHROMIUM", "/usr/bin/chromium"))  # Debian's; elsewhere say where
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCALE = 255


def missing() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    if importlib.util.find_spec("playwright") is None:
        return ("the playwright package is not installed (pip install playwright; the browser comes from "
                "apt-get install chromium)")
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


REQUIRED = os.environ.get("REQUIRE_BROWSER") == "1"
pytestmark = [
    pytest.mark.workflow,
    pytest.mark.skipif(missing() is not None and not REQUIRED, reason=str(missing())),
]


@pytest.fixture(scope="module")
def run_results(finished_run) -> Path:
    """results/ of the tiny two-model pipeline run (conftest.finished_run)."""
    return finished_run[0] / "results"


def expected(results: Path) -> dict:
    """translations.tsv rows and attention.json.gz content of each model."""
    runs = {}
    for model in TWO_MODELS:
        base = results / "fra-eng" / model
        with open(base / "translations.tsv", encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        attention = json.loads(gzip.decompress((base / "attention.json.gz").read_bytes()))
        runs[model] = {"rows": rows, "attention": attention}
    return runs


@pytest.fixture(scope="session")
def browser_available() -> None:
    """With REQUIRE_BROWSER=1, fail when the browser tests cannot run (otherwise they are skipped). Session-scoped
    and first among the page's fixtures, so that it fails before the session's pipeline run is set up."""
    reason = missing()
    if reason:
        pytest.fail(f"REQUIRE_BROWSER=1 but the browser tests cannot run: {reason}")


@pytest.fixture(scope="module")  # closed with the module: another module may drive its own browser
def browser():
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def load(browser, html: Path):
    """(page, errors): ``html`` loaded from file://, with every console error and uncaught exception collected."""
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(html.as_uri())
    page.wait_for_selector("html[data-ready]")
    return page, errors


@pytest.fixture
def page(browser_available, browser, run_results):
    """The pipeline's page, loaded from file://, with every console error and uncaught exception collected."""
    page, errors = load(browser, run_results / "explorer.html")
    yield page
    assert errors == [], errors
    page.close()


@pytest.fixture
def open_page(browser_available, browser, tmp_path):
    """open_page(runs): the page of these runs (seq2seq.explorer.Run, see :func:`made_up_run`), written and loaded
    like the pipeline's; it must start, and log no error."""
    opened = []

    def open_(runs: list[Run]):
        html = tmp_path / f"explorer-{len(opened)}.html"
        html.write_text(render_page(build_data(runs)), encoding="utf-8")
        page, errors = load(browser, html)
        opened.append((page, errors))
        assert page.evaluate("document.documentElement.dataset.ready") == "true", f"the page did not start: {errors}"
        return page

    yield open_
    for page, errors in opened:
        assert errors == [], errors
        page.close()


def made_up_weights(rows: int, columns: int, seed: int) -> list[list[float]]:
    """A row-stochastic matrix of random weights, rounded to 4 decimals like the evaluate stage's."""
    rng = random.Random(seed)
    matrix = []
    for _ in range(rows):
        raw = [rng.random() ** 3 for _ in range(columns)]
        matrix.append([round(x / sum(raw), 4) for x in raw])
    return matrix


def text_of(tokens: list[str]) -> str:
    """The text the evaluate stage writes for tokens (pieces joined, a "▁" a space; words joined by spaces)."""
    tokens = [t for t in tokens if t != EOS]
    if any(WORD_START in t for t in tokens):
        return "".join(tokens).replace(WORD_START, " ").strip()
    return " ".join(tokens)


def made_up_run(name: str, sentences: list[dict], pair: str = "fra-eng") -> Run:
    """A run as explorer.load_run returns it. Each sentence: {"source": text, "source_tokens": [...] (default: the
    text's str.split(), as the word-level vocabulary reads it), "greedy": its output, "beam": its output (default:
    greedy's), "seed": int, "beam_seed": int (default: the seed, so greedy's weights where the tokens are greedy's)};
    an output is a text (its tokens: its str.split() and <eos>) or a token list (its text: :func:`text_of`)."""
    rows, attention = [], {"format": 1, "source_tokens": [], "greedy": {"output_tokens": [], "weights": []},
                           "beam": {"output_tokens": [], "weights": []}}
    for k, sentence in enumerate(sentences):
        source = sentence.get("source_tokens") or sentence["source"].split()
        attention["source_tokens"].append(source)
        texts = {}
        for search in ("greedy", "beam"):
            output = sentence.get(search, sentence["greedy"])
            tokens, texts[search] = ([*output.split(), EOS], output) if isinstance(output, str) else \
                (output, text_of(output))
            seed = sentence["seed"] if search == "greedy" else sentence.get("beam_seed", sentence["seed"])
            attention[search]["output_tokens"].append(tokens)
            attention[search]["weights"].append(made_up_weights(len(tokens), len(source) + 1, seed))
        rows.append({"source": sentence["source"], "reference": texts["greedy"], **texts,
                     "greedy_bleu": 10.0 * k, "greedy_chrf": 20.0, "beam_bleu": None, "beam_chrf": 30.0})
    return Run(pair, name, rows, attention, f"{name}/translations.tsv", f"{name}/attention.json.gz")


def heatmap(page, model: str) -> dict:
    """What the page draws for one model: column labels, row labels, cell weights, cell coordinates."""
    return page.evaluate("""model => {
        const table = document.querySelector(`.card[data-run="${model}"] table.heatmap`);
        const cells = [...table.querySelectorAll("td.cell")];
        return {
            search: table.dataset.search,
            view: table.dataset.view,
            cols: [...table.querySelectorAll("th.col-label")].map(th => th.textContent),
            titles: [...table.querySelectorAll("th.col-label")].map(th => th.title),
            rows: [...table.querySelectorAll("th.row-label")].map(th => th.textContent),
            weights: [...table.querySelectorAll("tbody tr")].map(tr => [...tr.querySelectorAll("td.cell")]
                .map(td => Number(td.dataset.w))),
            cells: cells.length,
        };
    }""", model)


def assert_heatmap_matches(drawn: dict, attention: dict, search: str, i: int) -> None:
    """The drawn heatmap is sentence i's matrix of ``search`` in ``attention`` (attention.json.gz's content)."""
    source = attention["source_tokens"][i]
    output = attention[search]["output_tokens"][i]
    assert drawn["search"] == search
    assert drawn["cols"] == [*source, "<eos>"]  # source tokens in order, then <eos>
    assert drawn["rows"] == output, f"sentence {i}: the rows are not {search}'s output"  # one per produced token
    assert drawn["cells"] == len(output) * (len(source) + 1)
    for r, (got, want) in enumerate(zip(drawn["weights"], attention[search]["weights"][i])):
        assert got == pytest.approx(want, abs=0.5 / SCALE + 1e-4), f"sentence {i}, row {r}: not {search}'s weights"


def test_loads_without_errors_and_reports_its_load_time(page, run_results, record_property) -> None:
    assert page.evaluate("document.documentElement.dataset.ready") == "true"
    ready_ms = page.evaluate("window.explorerReadyAt")  # ms from navigation start to the page being drawn
    size = (run_results / "explorer.html").stat().st_size
    record_property("explorer_ready_ms", ready_ms)
    record_property("explorer_bytes", size)
    print(f"explorer.html: {size / 1e3:.0f} kB, ready {ready_ms:.0f} ms after navigation start")
    assert ready_ms < 2000
    assert size < 10_000_000
    # nothing was fetched from anywhere: every resource the page used is the page itself
    assert page.evaluate("performance.getEntriesByType('resource').length") == 0


def test_one_table_row_per_test_sentence(page, run_results) -> None:
    runs = expected(run_results)
    count = len(runs["bahdanau"]["rows"])
    assert count > 0
    page.select_option("#page-size", "all")
    assert page.locator("tbody.sentence").count() == count
    assert page.get_attribute("#sentences", "data-count") == str(count)
    sources = page.eval_on_selector_all("tbody.sentence .sent .src", "nodes => nodes.map(n => n.textContent)")
    assert sources == [row["source"] for row in runs["bahdanau"]["rows"]]
    # each sentence shows both models, greedy and beam
    first = page.locator("tbody.sentence").first
    assert first.locator("tr").count() == len(TWO_MODELS)
    assert first.locator("td.hyp[data-search=greedy]").all_text_contents()[0].startswith(
        runs["bahdanau"]["rows"][0]["greedy"] or "(empty)")
    # pages of 25 cover the same sentences
    page.select_option("#page-size", "25")
    assert page.locator("tbody.sentence").count() == min(25, count)


def test_the_search_box_keeps_the_sentences_with_the_word(page, run_results) -> None:
    runs = expected(run_results)
    page.select_option("#page-size", "all")

    def has(text: str, word: str) -> bool:  # the page's rule: a word of the text starts with the term
        return any(w.lower().startswith(word) for w in text.split())

    word = "tres"
    want = [i for i, row in enumerate(runs["bahdanau"]["rows"])
            if has(row["source"], word) or any(has(runs[m]["rows"][i][s], word) for m in TWO_MODELS
                                                for s in ("greedy", "beam"))]
    assert 0 < len(want) < len(runs["bahdanau"]["rows"])
    page.fill("#query", word)
    page.wait_for_function(f"document.querySelector('#sentences').dataset.count === '{len(want)}'")
    shown = [int(i) for i in page.eval_on_selector_all("tbody.sentence", "nodes => nodes.map(n => n.dataset.index)")]
    assert shown == want
    page.fill("#query", "zzzz-nowhere")
    page.wait_for_function("document.querySelector('#sentences').dataset.count === '0'")
    assert page.locator("tbody.sentence").count() == 0


def test_a_clicked_sentence_shows_every_models_heatmap_with_exact_labels(page, run_results) -> None:
    runs = expected(run_results)
    i = 3
    page.click(f"tbody.sentence[data-index='{i}']")
    assert page.locator(".card table.heatmap").count() == len(TWO_MODELS)
    for model in TWO_MODELS:
        assert_heatmap_matches(heatmap(page, model), runs[model]["attention"], "greedy", i)


def test_hovering_a_label_highlights_its_row_or_column(page, run_results) -> None:
    runs = expected(run_results)
    i = 2
    page.click(f"tbody.sentence[data-index='{i}']")
    attention = runs["bahdanau"]["attention"]
    rows, columns = len(attention["greedy"]["output_tokens"][i]), len(attention["source_tokens"][i]) + 1
    card = ".card[data-run=bahdanau] table.heatmap"
    r = rows - 1
    page.hover(f"{card} th.row-label[data-r='{r}']")
    highlighted = page.eval_on_selector_all(f"{card} td.cell.hl", "cells => cells.map(c => [c.dataset.r, c.dataset.c])")
    assert highlighted == [[str(r), str(c)] for c in range(columns)]
    assert page.locator("#tooltip").is_visible()
    assert page.locator(".card[data-run=luong] td.cell.hl").count() == 0
    page.hover(f"{card} th.col-label[data-c='0']")
    highlighted = page.eval_on_selector_all(f"{card} td.cell.hl", "cells => cells.map(c => [c.dataset.r, c.dataset.c])")
    assert highlighted == [[str(k), "0"] for k in range(rows)]
    page.hover(f"{card} td.cell[data-r='0'][data-c='0']")
    shown = re.search(r"attention weight (\d\.\d\d)", page.text_content("#tooltip"))
    assert shown and float(shown.group(1)) == pytest.approx(attention["greedy"]["weights"][i][0][0], abs=0.0051)
    page.mouse.move(0, 0)
    assert page.locator(f"{card} td.cell.hl").count() == 0


def test_the_pipelines_page_draws_beam_attention_in_the_beam_view(page, run_results) -> None:
    """Each model's beam matrix on the pipeline's page (in the tiny run it equals greedy's: the next test has them
    differ); word-level models have no pieces/words switch."""
    runs = expected(run_results)
    i = 1
    page.click(f"tbody.sentence[data-index='{i}']")
    page.click("#search-switch button[data-value=beam]")
    for model in TWO_MODELS:
        assert_heatmap_matches(heatmap(page, model), runs[model]["attention"], "beam", i)
    assert page.is_hidden("#view-control")


def far_apart(a: list[list[float]], b: list[list[float]]) -> bool:
    """Two matrices of one shape with a cell apart by more than the page's rounding could hide."""
    return any(abs(x - y) > 0.05 for row_a, row_b in zip(a, b) for x, y in zip(row_a, row_b))


def test_the_search_switch_swaps_greedy_and_beam_attention(open_page) -> None:
    """The beam view draws each run's beam matrix, the greedy view its greedy one: sentence 1's beam output
    differs from greedy's, sentence 2's has greedy's tokens with other weights, sentence 0's is greedy's (which the
    data stores once)."""
    sentences = [
        {"source": "je suis content .", "greedy": "i am happy .", "seed": 1},
        {"source": "tu es très grand .", "greedy": "you are tall .", "beam": "you are very tall .", "seed": 2,
         "beam_seed": 3},
        {"source": "il est fatigué .", "greedy": "he is tired .", "seed": 4, "beam_seed": 5},
    ]
    runs = [made_up_run("bahdanau", sentences),
            made_up_run("luong", [{**s, "seed": s["seed"] + 10, "beam_seed": s.get("beam_seed", s["seed"]) + 10}
                                  for s in sentences])]
    for run in runs:  # what the test needs of its runs, so that it cannot pass by drawing greedy's matrix
        greedy, beam = run.attention["greedy"], run.attention["beam"]
        assert beam["output_tokens"][1] != greedy["output_tokens"][1]
        assert beam["output_tokens"][2] == greedy["output_tokens"][2]
        assert far_apart(beam["weights"][2], greedy["weights"][2])
        assert beam["weights"][0] == greedy["weights"][0]
    page = open_page(runs)
    page.click("tbody.sentence[data-index='1']")
    for run in runs:
        assert_heatmap_matches(heatmap(page, run.name), run.attention, "greedy", 1)
    page.click("#search-switch button[data-value=beam]")
    for i in (1, 2, 0):
        page.click(f"tbody.sentence[data-index='{i}']")
        for run in runs:
            assert_heatmap_matches(heatmap(page, run.name), run.attention, "beam", i)
    page.click("#search-switch button[data-value=greedy]")
    page.click("tbody.sentence[data-index='2']")
    for run in runs:
        assert_heatmap_matches(heatmap(page, run.name), run.attention, "greedy", 2)


def word_groups(tokens: list[str]) -> list[list[int]]:
    """The words view's words as positions in ``tokens`` (explorer.js's groupPieces): a piece starting with "▁"
    starts a word, <eos> is a word of its own, any other piece (an <unk> too) continues the word before it."""
    groups: list[list[int]] = []
    for k, token in enumerate(tokens):
        if not groups or token == EOS or tokens[groups[-1][0]] == EOS or token.startswith(WORD_START):
            groups.append([k])
        else:
            groups[-1].append(k)
    return groups


def words_view(attention: dict, search: str, i: int) -> tuple[list[str], list[str], list[list[float]], list[str]]:
    """(column labels, row labels, weights, column titles) of sentence i in the words view: the weights as the page
    holds them (w x 255, rounded), summed over a source word's pieces and averaged over a produced word's."""
    cols, rows = [*attention["source_tokens"][i], EOS], attention[search]["output_tokens"][i]
    held = [[round(w * SCALE) / SCALE for w in row] for row in attention[search]["weights"][i]]
    col_groups, row_groups = word_groups(cols), word_groups(rows)

    def label(tokens: list[str], group: list[int]) -> str:
        return "".join(tokens[k] for k in group).replace(WORD_START, "") or WORD_START

    weights = [[sum(held[r][c] for r in g for c in h) / len(g) for h in col_groups] for g in row_groups]
    return ([label(cols, h) for h in col_groups], [label(rows, g) for g in row_groups], weights,
            [" ".join(cols[c] for c in h) for h in col_groups])


def assert_words_view(drawn: dict, attention: dict, search: str, i: int) -> None:
    cols, rows, weights, titles = words_view(attention, search, i)
    assert (drawn["search"], drawn["view"]) == (search, "words")
    assert drawn["cols"] == cols, f"sentence {i}: other source words than the pieces spell"
    assert drawn["rows"] == rows, f"sentence {i}: other produced words than the pieces spell"
    assert drawn["titles"] == titles  # a word's pieces, shown on hover
    for r, (got, want) in enumerate(zip(drawn["weights"], weights)):
        assert got == pytest.approx(want, abs=1e-4), f"sentence {i}, word row {r}: not the pieces' weights"


def test_the_words_view_groups_a_subword_runs_pieces_into_words(open_page) -> None:
    """In the words view a subword run's heatmap has a column per source word (its pieces' weights summed) and a
    row per produced word (its pieces' rows averaged); an <unk> piece inside a word stays in that word. A word-level
    run's heatmap stays as it was, and the pieces view comes back."""
    sentences = [
        {"source": "je suis content .", "source_tokens": ["▁je", "▁su", "is", "▁content", "▁."],
         "greedy": ["▁i", "▁am", "▁ha", "ppy", "▁.", EOS], "beam": ["▁i", "▁am", "▁gl", "ad", "▁.", EOS],
         "seed": 1, "beam_seed": 2},
        {"source": "tu es ŋgrand .", "source_tokens": ["▁t", "u", "▁es", "▁", "<unk>", "g", "r", "a", "n", "d", "▁."],
         "greedy": ["▁you", "▁are", "▁", "<unk>", "ll", "▁.", EOS], "seed": 3},
    ]
    pieces = made_up_run("pieces", sentences)
    words = made_up_run("words", [{"source": s["source"], "greedy": text_of(s["greedy"]),
                                   "beam": text_of(s.get("beam", s["greedy"])), "seed": 7 + k}
                                  for k, s in enumerate(sentences)])
    # the words the page must show for sentence 1, spelled out: "▁", "<unk>", "g", ... are the one word <unk>grand
    assert words_view(pieces.attention, "greedy", 1)[:2] == (["tu", "es", "<unk>grand", ".", EOS],
                                                              ["you", "are", "<unk>ll", ".", EOS])
    page = open_page([words, pieces])
    assert page.is_visible("#view-control")
    page.click("tbody.sentence[data-index='1']")
    page.click("#view-switch button[data-value=words]")
    assert_words_view(heatmap(page, "pieces"), pieces.attention, "greedy", 1)
    assert_heatmap_matches(heatmap(page, "words"), words.attention, "greedy", 1)
    page.click("#search-switch button[data-value=beam]")
    page.click("tbody.sentence[data-index='0']")
    assert_words_view(heatmap(page, "pieces"), pieces.attention, "beam", 0)
    page.click("#view-switch button[data-value=pieces]")
    assert_heatmap_matches(heatmap(page, "pieces"), pieces.attention, "beam", 0)


# whitespace to Python's str.split() alone, to JavaScript's \s alone (U+FEFF), then to both
ODD_SPACES = "\x85\x1c\x1d\x1e\x1f\ufeff\xa0\u2028\u3000"


def test_texts_with_any_whitespace_draw_their_tokens(open_page) -> None:
    """A text holding whitespace other than spaces, whose tokens (its str.split()) are not the words the page
    splits it into, still starts the page and draws the tokens the run has (the page's data carries them)."""
    sentences = [{"source": f"je{space}suis content .", "greedy": f"i{space}am happy .", "beam": f"i am{space}glad .",
                  "seed": k} for k, space in enumerate(ODD_SPACES)]
    run = made_up_run("m", sentences)
    page = open_page([run])
    for search in ("greedy", "beam"):
        for i, sentence in enumerate(sentences):
            matrix = page.evaluate("([search, i]) => window.explorer.matrix(0, 0, search, i)", [search, i])
            assert (matrix["cols"], matrix["rows"]) == ([*run.attention["source_tokens"][i], EOS],
                                                        run.attention[search]["output_tokens"][i]), \
                f"{search} sentence {i} ({sentence['source']!r}): other tokens than the run's"
    page.click("tbody.sentence[data-index='0']")
    assert_heatmap_matches(heatmap(page, "m"), run.attention, "greedy", 0)


def test_a_produced_word_missing_from_the_reference_is_marked_whatever_the_word(open_page) -> None:
    """"constructor" is a word like any other (it is also the name of every plain JavaScript object's property)."""
    run = made_up_run("m", [{"source": "il est constructeur .", "greedy": "he is a constructor .", "seed": 1}])
    run.rows[0]["reference"] = "he is a builder ."
    page = open_page([run])
    marked = "nodes => nodes.map(n => n.textContent)"
    assert page.eval_on_selector_all("td.hyp[data-search=greedy] .miss", marked) == ["constructor"]
    page.click("tbody.sentence[data-index='0']")
    assert page.eval_on_selector_all(".card .card-hyp .miss", marked) == ["constructor"]


def test_a_produced_word_of_a_model_without_attention_looks_at_no_source_token(open_page) -> None:
    run = made_up_run("none", [{"source": "il dort .", "greedy": "he sleeps .", "seed": 1}])
    run.attention["greedy"]["weights"][0] = [[0.0] * 4 for _ in range(4)]  # 4 produced tokens, 3 source + <eos>
    page = open_page([run])
    page.click("tbody.sentence[data-index='0']")
    page.hover(".card table.heatmap th.row-label[data-r='0']")
    tooltip = page.text_content("#tooltip")
    assert "looks at no source token" in tooltip and "null" not in tooltip, tooltip


def test_a_hover_reads_the_drawn_weights_without_a_query_per_cell(open_page) -> None:
    """A query per cell made a hover over a label of a 100-token sentence take a second; the tooltip still names
    the row's strongest source token."""
    n = 60
    source = " ".join(f"w{k}" for k in range(n))
    run = made_up_run("m", [{"source": source, "greedy": source, "seed": 3}])
    page = open_page([run])
    page.click("tbody.sentence[data-index='0']")
    page.evaluate("""() => {
        window.queries = 0;
        const original = Element.prototype.querySelector;
        Element.prototype.querySelector = function (...args) { window.queries++; return original.apply(this, args); };
    }""")
    r = 5
    page.hover(f".card table.heatmap th.row-label[data-r='{r}']")
    row = run.attention["greedy"]["weights"][0][r]
    strongest = [*source.split(), "<eos>"][row.index(max(row))]
    assert f"looks most at \u201c{strongest}\u201d" in page.text_content("#tooltip")
    page.hover(".card table.heatmap th.col-label[data-c='7']")
    assert page.evaluate("window.queries") < n



def test_all_rows_of_many_runs_line_up_and_only_the_visible_ones_are_laid_out(open_page) -> None:
    """"all" rows of a grid's page were one table of tens of thousands of cells, which the browser took 7-16 s to
    lay out: each sentence is now a table of its own, laid out only when in sight, with the header's columns."""
    sentences = [{"source": f"phrase numero {k} est assez longue pour passer a la ligne {'x' * (k % 7)}",
                  "greedy": f"sentence number {k}", "seed": k} for k in range(120)]
    runs = [made_up_run(f"run-with-a-long-name-{r}", sentences) for r in range(4)]
    page = open_page(runs)
    page.select_option("#page-size", "all")
    assert page.locator("tbody.sentence").count() == 120
    columns = """(table) => [...table.querySelectorAll('tr:first-child > *')]
        .filter(cell => getComputedStyle(cell).display !== 'none')
        .map(cell => Math.round(cell.getBoundingClientRect().left))"""
    head = page.eval_on_selector("table.sentences-head", columns)
    assert len(head) == 5  # #, sentence, run, greedy, beam
    first = page.eval_on_selector("tbody.sentence[data-index='0']", f"body => ({columns})(body)")
    assert first == head, (first, head)
    # the browser may skip the layout of a sentence out of sight
    assert page.eval_on_selector("tbody.sentence[data-index='119']",
                                 "b => getComputedStyle(b.closest('.sentence-box')).contentVisibility") == "auto"
    # the keys reach the last sentence, which is then laid out in sight, with the header's columns
    page.click("tbody.sentence[data-index='117']")  # scrolled to, far down
    for _ in range(3):
        page.keyboard.press("j")
    assert page.get_attribute("tbody.sentence.selected", "data-index") == "119"
    assert page.eval_on_selector("tbody.sentence[data-index='119']", f"body => ({columns})(body)") == head
    box = page.eval_on_selector("tbody.sentence[data-index='119']", "b => b.getBoundingClientRect().bottom")
    assert 0 < box <= page.evaluate("document.querySelector('#table-wrap').getBoundingClientRect().bottom") + 1
    # one run: no run column, in the header and in the sentences alike
    single = open_page([runs[0]])
    one_head = single.eval_on_selector("table.sentences-head", columns)
    assert len(one_head) == 4
    assert single.eval_on_selector("tbody.sentence[data-index='0']", f"body => ({columns})(body)") == one_head
    # and no column without cells: the beam column ends where the table does, as wide as the greedy one
    for shown in (page, single):
        widths = shown.eval_on_selector("tbody.sentence[data-index='0']", """body => {
            const cells = [...body.querySelectorAll('tr:first-child td.hyp')].map(c => c.getBoundingClientRect());
            const table = body.closest('table').getBoundingClientRect();
            return [cells[0].width, cells[1].width, cells[1].right, table.right];
        }""")
        assert widths[0] == pytest.approx(widths[1], abs=1) and widths[2] == pytest.approx(widths[3], abs=1), widths
