"""The explorer page in a real browser (headless Chromium through Playwright), built by a tiny pipeline run.

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
import re
from pathlib import Path

import pytest

from helpers import TWO_MODELS

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


@pytest.fixture
def page(browser_available, browser, run_results):
    """The page loaded from file://, with every console error and uncaught exception collected."""
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto((run_results / "explorer.html").as_uri())
    page.wait_for_selector("html[data-ready]")
    yield page
    assert errors == [], errors
    page.close()


def heatmap(page, model: str) -> dict:
    """What the page draws for one model: column labels, row labels, cell weights, cell coordinates."""
    return page.evaluate("""model => {
        const table = document.querySelector(`.card[data-run="${model}"] table.heatmap`);
        const cells = [...table.querySelectorAll("td.cell")];
        return {
            search: table.dataset.search,
            cols: [...table.querySelectorAll("th.col-label")].map(th => th.textContent),
            rows: [...table.querySelectorAll("th.row-label")].map(th => th.textContent),
            weights: [...table.querySelectorAll("tbody tr")].map(tr => [...tr.querySelectorAll("td.cell")]
                .map(td => Number(td.dataset.w))),
            cells: cells.length,
        };
    }""", model)


def assert_heatmap_matches(drawn: dict, attention: dict, search: str, i: int) -> None:
    source = attention["source_tokens"][i]
    output = attention[search]["output_tokens"][i]
    assert drawn["search"] == search
    assert drawn["cols"] == [*source, "<eos>"]  # source tokens in order, then <eos>
    assert drawn["rows"] == output  # one row per produced token, in order
    assert drawn["cells"] == len(output) * (len(source) + 1)
    for got, want in zip(drawn["weights"], attention[search]["weights"][i]):
        assert got == pytest.approx(want, abs=0.5 / SCALE + 1e-4)


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


def test_the_search_switch_swaps_greedy_and_beam_attention(page, run_results) -> None:
    runs = expected(run_results)
    attention = runs["bahdanau"]["attention"]
    differs = [k for k in range(len(attention["source_tokens"]))
               if attention["greedy"]["weights"][k] != attention["beam"]["weights"][k]]
    i = differs[0] if differs else 0
    page.click(f"tbody.sentence[data-index='{i}']")
    assert_heatmap_matches(heatmap(page, "bahdanau"), attention, "greedy", i)
    page.click("#search-switch button[data-value=beam]")
    for model in TWO_MODELS:
        assert_heatmap_matches(heatmap(page, model), runs[model]["attention"], "beam", i)
    page.click("#search-switch button[data-value=greedy]")
    assert_heatmap_matches(heatmap(page, "bahdanau"), attention, "greedy", i)
    assert page.is_hidden("#view-control")  # word-level models: no pieces/words switch
