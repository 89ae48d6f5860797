// Attention explorer: the test sentences of every run, their translations, scores and attention heatmaps.
// Plain JavaScript, no libraries. The data is the JSON of the element #explorer-data (format in
// seq2seq/explorer.py). Text from the data only ever reaches the page as text nodes, never as HTML.
(function () {
  "use strict";

  // matplotlib's viridis at 0, 0.1, ..., 1 (the colours of the pipeline's attention figures)
  var VIRIDIS = [[68, 1, 84], [72, 36, 117], [65, 68, 135], [53, 95, 141], [42, 120, 142], [33, 145, 140],
    [34, 168, 132], [68, 191, 112], [122, 209, 81], [189, 223, 38], [253, 231, 37]];

  var DATA = JSON.parse(document.getElementById("explorer-data").textContent);
  var SCALE = DATA.scale;
  var TOKENS = DATA.tokens;
  var EOS = DATA.eos; // the end-of-sentence label and sentencepiece's word-start mark, as the pipeline writes them
  var MARK = DATA.word_start;

  // ------------------------------------------------------------------ helpers

  function $(id) { return document.getElementById(id); }

  // el("td", {className: "x", dataset: {r: 1}, title: "..."}, child, "text", ...)
  function el(tag, props) {
    var node = document.createElement(tag);
    if (props) {
      for (var key in props) {
        if (key === "dataset") {
          for (var d in props.dataset) node.dataset[d] = props.dataset[d];
        } else if (key === "style") {
          for (var s in props.style) node.style.setProperty(s, props.style[s]);
        } else if (key === "text") {
          node.textContent = props.text;
        } else {
          node[key] = props[key];
        }
      }
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  // the words of a text: split on U+0020 spaces alone, as explorer.py's words() (not on \s, whose whitespace is
  // not Python's str.split()'s): a sentence whose tokens are not its words carries them in the data
  function words(text) { return text.split(" ").filter(Boolean); }

  // the terms typed in the search box: any whitespace separates them
  function queryTerms(query) { return query.split(/\s+/).filter(Boolean); }

  function fold(text) {
    return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  function viridis(w) {
    var x = Math.max(0, Math.min(1, w)) * 10;
    var i = Math.min(9, Math.floor(x));
    var f = x - i;
    var a = VIRIDIS[i], b = VIRIDIS[i + 1];
    return "rgb(" + Math.round(a[0] + f * (b[0] - a[0])) + "," + Math.round(a[1] + f * (b[1] - a[1])) + "," +
      Math.round(a[2] + f * (b[2] - a[2])) + ")";
  }

  function formatWeight(w) { return w.toFixed(2); } // stored as w x 255: two decimals are what is known

  function cellText(w) {
    if (w < 0.01) return "";
    if (w >= 0.995) return "1";
    return "." + String(Math.round(w * 100)).padStart(2, "0");
  }

  function formatScore(x) { return x === null || x === undefined ? "–" : x.toFixed(1); }

  function thousands(n) { return n.toLocaleString("en-US"); }

  function decodeBase64(text) {
    var binary = atob(text);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  function ids(list) { return list.map(function (id) { return TOKENS[id]; }); }

  // ------------------------------------------------------------------ the data, with lazy decoding

  function Search(run, block, greedy) {
    this.run = run;
    this.block = block;
    this.greedy = greedy || null; // beam: the greedy Search of the same run
    this.same = {};
    for (var k = 0; k < block.same.length; k++) this.same[block.same[k]] = true;
    this.bytes = null;
    this.offsets = null;
  }
  Search.prototype.isSame = function (i) { return this.same[i] === true; };
  Search.prototype.text = function (i) { return this.block.text[i]; };
  Search.prototype.outputTokens = function (i) {
    if (this.isSame(i)) return this.greedy.outputTokens(i);
    var override = this.block.output_tokens[i];
    return override ? ids(override) : words(this.block.text[i]).concat([EOS]);
  };
  Search.prototype.decode = function () {
    if (this.bytes) return;
    this.bytes = decodeBase64(this.block.weights);
    var n = this.block.text.length;
    this.offsets = new Int32Array(n);
    var offset = 0;
    for (var i = 0; i < n; i++) {
      if (this.isSame(i)) { this.offsets[i] = -1; continue; }
      this.offsets[i] = offset;
      offset += this.outputTokens(i).length * (this.run.sourceTokens(i).length + 1);
    }
    if (offset !== this.bytes.length) {
      throw new Error("run " + this.run.name + ": " + this.bytes.length + " weight bytes, expected " + offset);
    }
  };
  // {rows: output tokens, cols: source tokens + <eos>, w: Float64Array rows x cols (0..1)}
  Search.prototype.matrix = function (i) {
    if (this.isSame(i)) return this.greedy.matrix(i);
    this.decode();
    var rows = this.outputTokens(i), cols = this.run.sourceTokens(i).concat([EOS]);
    var size = rows.length * cols.length, start = this.offsets[i];
    var w = new Float64Array(size);
    for (var k = 0; k < size; k++) w[k] = this.bytes[start + k] / SCALE;
    return {rows: rows, cols: cols, w: w};
  };

  function Run(pair, index, data) {
    this.pair = pair;
    this.index = index;
    this.name = data.name;
    this.data = data;
    this.subword = data.subword; // labels are sentencepiece pieces
    this.searches = {greedy: new Search(this, data.greedy)};
    this.searches.beam = new Search(this, data.beam, this.searches.greedy);
  }
  Run.prototype.sourceTokens = function (i) {
    var override = this.data.source_tokens[i];
    return override ? ids(override) : this.pair.sourceWords(i);
  };

  function Pair(data) {
    var self = this;
    this.name = data.name;
    this.data = data;
    this.n = data.source.length;
    this.subword = data.subword;
    this.runs = data.runs.map(function (run, index) { return new Run(self, index, run); });
    this.shown = this.runs.map(function () { return true; });
    this.folded = null;
  }
  Pair.prototype.sourceWords = function (i) { return words(this.data.source[i]); };
  Pair.prototype.shownRuns = function () {
    var shown = this.shown;
    return this.runs.filter(function (run, k) { return shown[k]; });
  };
  // folded words, for the search box: source[i], and hyp[run][search][i]
  Pair.prototype.index = function () {
    if (this.folded) return this.folded;
    var self = this;
    var folded = {source: this.data.source.map(function (s) { return words(fold(s)); }), hyp: []};
    this.runs.forEach(function (run) {
      folded.hyp.push({
        greedy: run.data.greedy.text.map(function (s) { return words(fold(s)); }),
        beam: run.data.beam.text.map(function (s) { return words(fold(s)); }),
      });
    });
    self.folded = folded;
    return folded;
  };

  var PAIRS = DATA.pairs.map(function (p) { return new Pair(p); });

  // ------------------------------------------------------------------ state

  var state = {
    pair: 0, search: "greedy", view: "pieces", query: "", filter: "all", sort: "order",
    page: 0, pageSize: 50, selected: null, numbers: true, order: null,
  };

  function pair() { return PAIRS[state.pair]; }

  function matches(p, i, terms, runs) {
    if (!terms.length) return true;
    var index = p.index();
    return terms.every(function (term) {
      var hit = function (list) { return list.some(function (w) { return w.indexOf(term) === 0; }); };
      if (hit(index.source[i])) return true;
      return runs.some(function (run) {
        return hit(index.hyp[run.index].greedy[i]) || hit(index.hyp[run.index].beam[i]);
      });
    });
  }

  function keep(p, i, runs) {
    var reference = p.data.reference[i];
    var texts = runs.map(function (run) { return run.searches[state.search].text(i); });
    switch (state.filter) {
      case "disagree": return texts.some(function (t) { return t !== texts[0]; });
      case "greedy-beam": return runs.some(function (run) {
        return run.searches.greedy.text(i) !== run.searches.beam.text(i);
      });
      case "some-wrong": return texts.some(function (t) { return t !== reference; });
      case "all-wrong": return texts.every(function (t) { return t !== reference; });
      case "all-right": return texts.every(function (t) { return t === reference; });
      default: return true;
    }
  }

  function meanScore(runs, metric, i) {
    var total = 0, count = 0;
    runs.forEach(function (run) {
      var value = run.searches[state.search].block[metric][i];
      if (value !== null && value !== undefined) { total += value; count++; }
    });
    return count ? total / count : null;
  }

  // sentence indices after search, filter and sort (cached until one of them changes)
  function order() {
    if (state.order) return state.order;
    var p = pair(), runs = p.shownRuns();
    var terms = queryTerms(fold(state.query));
    var list = [];
    for (var i = 0; i < p.n; i++) if (keep(p, i, runs) && matches(p, i, terms, runs)) list.push(i);
    var parts = state.sort.split("-"), key = parts[0], direction = parts[1] === "desc" ? -1 : 1;
    if (key !== "order") {
      var value = {};
      list.forEach(function (i) {
        value[i] = key === "len" ? p.sourceWords(i).length : meanScore(runs, key, i);
      });
      list.sort(function (a, b) {
        var x = value[a], y = value[b];
        if (x === null && y === null) return a - b;
        if (x === null) return 1; // no score: last
        if (y === null) return -1;
        return (x - y) * direction || a - b;
      });
    }
    state.order = list;
    return list;
  }

  function invalidate() { state.order = null; }

  // ------------------------------------------------------------------ token labels

  // a token as text nodes: in the pieces view each "▁" is drawn as a faint marker
  function tokenNode(token) {
    var span = el("span", {className: "tok" + (token === EOS ? " eos" : "")});
    if (token.indexOf(MARK) < 0) {
      span.textContent = token;
      return span;
    }
    token.split(MARK).forEach(function (part, k) {
      if (k > 0) span.appendChild(el("span", {className: "ws", text: MARK}));
      if (part) span.appendChild(document.createTextNode(part));
    });
    return span;
  }

  // words view: group pieces into words ("▁" starts a word; <eos> is its own group)
  function groupPieces(tokens) {
    var groups = [];
    tokens.forEach(function (token, k) {
      var last = groups[groups.length - 1];
      if (!last || token === EOS || last.eos || token.indexOf(MARK) === 0) {
        groups.push({members: [k], pieces: [token], eos: token === EOS});
      } else {
        last.members.push(k);
        last.pieces.push(token);
      }
    });
    groups.forEach(function (g) {
      g.label = g.eos ? EOS : (g.pieces.join("").split(MARK).join("") || MARK);
    });
    return groups;
  }

  // the matrix in the current view: source weights summed over a word's pieces, averaged over a produced word's
  function viewMatrix(m, run) {
    if (state.view !== "words" || !run.subword) {
      return {rows: m.rows, cols: m.cols, w: m.w, rowPieces: null, colPieces: null};
    }
    var rg = groupPieces(m.rows), cg = groupPieces(m.cols);
    var width = m.cols.length, w = new Float64Array(rg.length * cg.length);
    rg.forEach(function (g, r) {
      cg.forEach(function (h, c) {
        var total = 0;
        g.members.forEach(function (i) { h.members.forEach(function (j) { total += m.w[i * width + j]; }); });
        w[r * cg.length + c] = total / g.members.length;
      });
    });
    return {
      rows: rg.map(function (g) { return g.label; }), cols: cg.map(function (g) { return g.label; }), w: w,
      rowPieces: rg.map(function (g) { return g.pieces; }), colPieces: cg.map(function (g) { return g.pieces; }),
    };
  }

  // ------------------------------------------------------------------ header and controls

  function setSegment(container, value) {
    container.querySelectorAll("button").forEach(function (b) {
      b.setAttribute("aria-pressed", b.dataset.value === value ? "true" : "false");
    });
  }

  function renderHeader() {
    var p = pair();
    var runs = p.runs.length;
    $("subtitle").textContent = p.name + " · " + (runs === 1 ? "model " + p.runs[0].name : runs + " runs") +
      " · " + thousands(p.n) + " test sentences";
    $("pair-control").hidden = PAIRS.length < 2;
    var pairSwitch = $("pair-switch");
    pairSwitch.textContent = "";
    PAIRS.forEach(function (q, k) {
      pairSwitch.appendChild(el("button", {type: "button", dataset: {value: String(k)}, text: q.name}));
    });
    setSegment(pairSwitch, String(state.pair));
    setSegment($("search-switch"), state.search);
    $("view-control").hidden = !p.subword;
    setSegment($("view-switch"), state.view);
    renderRunChips();
  }

  function renderRunChips() {
    var p = pair();
    $("runs-bar").hidden = p.runs.length < 2;
    var chips = $("run-chips");
    chips.textContent = "";
    p.runs.forEach(function (run, k) {
      var exact = 0, texts = run.searches[state.search].block.text;
      for (var i = 0; i < p.n; i++) if (texts[i] === p.data.reference[i]) exact++;
      var chip = el("button", {
        type: "button", className: "chip", dataset: {run: String(k)},
        title: run.name + ": " + exact + " of " + p.n + " " + state.search + " translations equal the reference." +
          "\nClick to show or hide; double-click to show only this run.",
      }, el("span", {className: "chip-name", text: run.name}),
      el("span", {className: "chip-stat", text: Math.round(100 * exact / Math.max(1, p.n)) + "% exact"}));
      chip.setAttribute("aria-pressed", p.shown[k] ? "true" : "false");
      chips.appendChild(chip);
    });
  }

  // ------------------------------------------------------------------ the table

  function highlighted(text, terms, referenceWords) {
    var node = el("span", {className: "hyp-text"});
    if (!text) {
      node.appendChild(el("span", {className: "empty", text: "(empty)"}));
      return node;
    }
    words(text).forEach(function (word, k) {
      if (k) node.appendChild(document.createTextNode(" "));
      var f = fold(word);
      var hit = terms.some(function (t) { return f.indexOf(t) === 0; });
      var miss = referenceWords && !referenceWords.has(word);
      if (!hit && !miss) { node.appendChild(document.createTextNode(word)); return; }
      var span = el(hit ? "mark" : "span", {text: word});
      if (miss) {
        span.className = "miss";
        span.title = "not in the reference";
      }
      node.appendChild(span);
    });
    return node;
  }

  function scoreBadges(search, i) {
    var bleu = search.block.bleu[i], chrf = search.block.chrf[i];
    var level = bleu === null ? "none" : bleu >= 99.95 ? "top" : bleu >= 50 ? "good" : bleu >= 20 ? "fair" : "poor";
    return el("span", {className: "scores"},
      el("span", {className: "badge bleu " + level, title: "sentence BLEU (0-100)", text: "BLEU " + formatScore(bleu)}),
      el("span", {className: "badge chrf", title: "sentence chrF (0-100)", text: "chrF " + formatScore(chrf)}));
  }

  function hypothesisCell(run, name, i, terms, referenceWords) {
    var search = run.searches[name];
    var text = search.text(i), reference = run.pair.data.reference[i];
    var cell = el("td", {className: "hyp" + (name === state.search ? " current" : "") +
      (text === reference ? " exact" : " wrong"), dataset: {search: name}});
    if (name === "beam" && text === run.searches.greedy.text(i)) cell.classList.add("same-as-greedy");
    cell.appendChild(highlighted(text, terms, text === reference ? null : referenceWords));
    cell.appendChild(el("div", {className: "hyp-meta"}, scoreBadges(search, i),
      text === reference ? el("span", {className: "badge ok", title: "equal to the reference", text: "✓ exact"}) : null));
    return cell;
  }

  // Each sentence is a table of its own in a box that the browser does not lay out while it is out of sight
  // (content-visibility): "all" rows of a grid of 13 runs are tens of thousands of cells, whose layout as one
  // table took seconds. The tables share fixed column widths, so that their columns line up with the header's.
  function columns(runs) {
    var longest = Math.max.apply(null, runs.map(function (run) { return run.name.length; }));
    return el("colgroup", null, el("col", {className: "c-num"}), el("col", {className: "c-sent"}),
      runs.length > 1 ? el("col", {className: "c-run", style: {width: Math.min(Math.ceil(longest * 0.85) + 2, 16) + "ch"}}) : null,
      el("col", {className: "c-hyp"}), el("col", {className: "c-hyp"}));
  }

  function sentenceBox(body, runs) {
    // the height it is counted as while not laid out: about a row a run (its real height once it has been)
    return el("div", {className: "sentence-box", style: {"contain-intrinsic-size": "auto " + (runs.length * 48) + "px"}},
      el("table", null, columns(runs), body));
  }

  function sentenceBody(p, i, runs, terms) {
    var reference = p.data.reference[i];
    var referenceWords = new Set(words(reference));
    var body = el("tbody", {className: "sentence" + (state.selected === i ? " selected" : ""),
      dataset: {index: String(i)}, tabIndex: -1});
    runs.forEach(function (run, k) {
      var row = el("tr", {dataset: {run: run.name}});
      if (k === 0) {
        // the number and the sentence stay in sight while the rows of many runs scroll by
        row.appendChild(el("td", {className: "num", rowSpan: runs.length},
          el("div", {className: "stick", text: String(i + 1)})));
        row.appendChild(el("td", {className: "sent", rowSpan: runs.length}, el("div", {className: "stick"},
          el("div", {className: "src"}, highlighted(p.data.source[i], terms, null)),
          el("div", {className: "ref", title: "reference translation"}, el("span", {className: "ref-mark", text: "ref"}),
            document.createTextNode(reference)))));
      }
      row.appendChild(el("td", {className: "run-col", text: run.name, title: run.name}));
      row.appendChild(hypothesisCell(run, "greedy", i, terms, referenceWords));
      row.appendChild(hypothesisCell(run, "beam", i, terms, referenceWords));
      body.appendChild(row);
    });
    return body;
  }

  function pageCount(total) {
    return state.pageSize === Infinity ? 1 : Math.max(1, Math.ceil(total / state.pageSize));
  }

  function renderTable() {
    var p = pair(), runs = p.shownRuns(), list = order();
    var table = $("sentences");
    var pages = pageCount(list.length);
    state.page = Math.min(state.page, pages - 1);
    var start = state.pageSize === Infinity ? 0 : state.page * state.pageSize;
    var end = state.pageSize === Infinity ? list.length : Math.min(list.length, start + state.pageSize);
    table.querySelectorAll(".sentence-box").forEach(function (b) { b.remove(); });
    table.classList.toggle("one-run", runs.length < 2);
    var head = table.querySelector("table.sentences-head");
    head.replaceChild(columns(runs), head.querySelector("colgroup"));
    table.querySelectorAll("thead th[data-search]").forEach(function (th) {
      th.classList.toggle("current", th.dataset.search === state.search);
    });
    var terms = queryTerms(fold(state.query));
    var fragment = document.createDocumentFragment();
    for (var k = start; k < end; k++) fragment.appendChild(sentenceBox(sentenceBody(p, list[k], runs, terms), runs));
    if (!list.length) {
      fragment.appendChild(sentenceBox(el("tbody", {className: "none"}, el("tr", null,
        el("td", {colSpan: 5, className: "nothing", text: "No sentence matches: change the search or the filter."}))),
        runs));
    }
    table.appendChild(fragment);
    table.dataset.count = String(list.length);
    table.dataset.total = String(p.n);
    var status = $("status");
    status.textContent = "";
    status.appendChild(el("span", {className: "count", text: (list.length === p.n ? "All " + thousands(p.n) :
      thousands(list.length) + " of " + thousands(p.n)) + " test sentences" +
      (state.query.trim() ? " with “" + state.query.trim() + "”" : "") + " · click one to see its attention"}));
    status.appendChild(el("span", {className: "key"}, el("span", {className: "miss", text: "wavy"}),
      " = not in the reference"));
    $("page-info").textContent = list.length ? "rows " + thousands(start + 1) + "–" + thousands(end) + " of " +
      thousands(list.length) + " · page " + (state.page + 1) + " of " + pages : "no rows";
    $("prev-page").disabled = state.page === 0;
    $("next-page").disabled = state.page >= pages - 1;
  }

  function markSelected() {
    $("sentences").querySelectorAll("tbody.sentence").forEach(function (b) {
      b.classList.toggle("selected", Number(b.dataset.index) === state.selected);
    });
  }

  // ------------------------------------------------------------------ the heatmaps

  function heatmap(run, i) {
    var search = run.searches[state.search];
    var m = viewMatrix(search.matrix(i), run);
    var rows = m.rows, cols = m.cols, width = cols.length;
    var table = el("table", {className: "heatmap", dataset: {run: run.name, search: state.search,
      view: m.rowPieces ? "words" : "pieces"}});
    var head = el("tr", null, el("th", {className: "corner"},
      el("span", {text: "source →"}), el("span", {text: "output ↓"})));
    cols.forEach(function (token, c) {
      var th = el("th", {className: "col-label" + (token === EOS ? " eos" : ""), scope: "col",
        dataset: {c: String(c), token: token}}, el("div", {className: "col-text"}, tokenNode(token)));
      if (m.colPieces) th.title = m.colPieces[c].join(" ");
      head.appendChild(th);
    });
    table.appendChild(el("thead", null, head));
    var body = el("tbody");
    rows.forEach(function (token, r) {
      var tr = el("tr");
      var th = el("th", {className: "row-label" + (token === EOS ? " eos" : ""), scope: "row",
        dataset: {r: String(r), token: token}}, tokenNode(token));
      if (m.rowPieces) th.title = m.rowPieces[r].join(" ");
      tr.appendChild(th);
      for (var c = 0; c < width; c++) {
        var w = m.w[r * width + c];
        tr.appendChild(el("td", {className: "cell" + (w > 0.6 ? " light" : ""),
          dataset: {r: String(r), c: String(c), w: w.toFixed(4)},
          style: {"background-color": viridis(w)}, text: state.numbers ? cellText(w) : ""}));
      }
      body.appendChild(tr);
    });
    table.appendChild(body);
    drawnMatrices.set(table, m);
    return table;
  }

  function renderDetail() {
    var p = pair(), list = order(), cards = $("cards"), card = $("sentence-card");
    cards.textContent = "";
    card.textContent = "";
    var position = state.selected === null ? -1 : list.indexOf(state.selected);
    $("prev-sentence").disabled = position <= 0;
    $("next-sentence").disabled = position < 0 || position >= list.length - 1;
    if (state.selected === null) {
      $("detail-position").textContent = "";
      card.appendChild(el("p", {className: "nothing", text: "No sentence selected."}));
      return;
    }
    var i = state.selected;
    $("detail-position").textContent = "sentence " + thousands(i + 1) + " of " + thousands(p.n) +
      (position >= 0 && list.length < p.n ? " · " + thousands(position + 1) + " of the " +
        thousands(list.length) + " shown" : "");
    card.appendChild(el("div", {className: "line"}, el("span", {className: "line-label", text: "source"}),
      el("span", {className: "line-text src", text: p.data.source[i]})));
    card.appendChild(el("div", {className: "line"}, el("span", {className: "line-label", text: "reference"}),
      el("span", {className: "line-text ref", text: p.data.reference[i]})));
    var reference = p.data.reference[i];
    var referenceWords = new Set(words(reference));
    p.shownRuns().forEach(function (run) {
      var search = run.searches[state.search];
      var text = search.text(i);
      var same = state.search === "beam" && text === run.searches.greedy.text(i);
      cards.appendChild(el("figure", {className: "card", dataset: {run: run.name}},
        el("figcaption", null,
          el("div", {className: "card-title"}, el("span", {className: "run-name", text: run.name}),
            el("span", {className: "tag", text: state.search + " search"}),
            same ? el("span", {className: "tag muted", text: "same as greedy"}) : null,
            state.view === "words" && run.subword ? el("span", {className: "tag muted", text: "whole words",
              title: "attention summed over a source word's pieces, averaged over a produced word's pieces"}) : null),
          el("div", {className: "card-hyp"}, highlighted(text, [], text === reference ? null : referenceWords)),
          el("div", {className: "hyp-meta"}, scoreBadges(search, i),
            text === reference ? el("span", {className: "badge ok", text: "✓ exact"}) : null)),
        el("div", {className: "heatmap-wrap"}, heatmap(run, i))));
    });
  }

  // ------------------------------------------------------------------ hovering: highlights and tooltip

  var hover = {table: null};
  var tooltip = $("tooltip");

  function clearHover() {
    if (!hover.table) return;
    hover.table.classList.remove("focus");
    hover.table.querySelectorAll(".hl, .active, .attended").forEach(function (node) {
      node.classList.remove("hl", "active", "attended");
      node.style.removeProperty("--a");
    });
    hover.table = null;
    tooltip.hidden = true;
    tipAnchor = null;
  }

  // the matrix each heatmap was drawn from: a hover reads its weights there (a query per cell would make a
  // hover over a long sentence's label quadratic in its length)
  var drawnMatrices = new WeakMap();

  function weightAt(table, r, c) {
    var m = drawnMatrices.get(table);
    return Number(m.w[Number(r) * m.cols.length + Number(c)].toFixed(4)); // as the cell's data-w shows it
  }

  // the tooltip sits beside what it describes: left of the matrix for a produced word, above it for a source
  // word, above the pointer for a cell (so that it never hides the row or column being read)
  var tipAnchor = null;

  function showTooltip(event, lines, anchor) {
    tooltip.textContent = "";
    lines.forEach(function (line) { tooltip.appendChild(el("div", {className: line[0], text: line[1]})); });
    tooltip.hidden = false;
    tipAnchor = anchor;
    placeTooltip(event);
  }

  function placeTooltip(event) {
    if (tooltip.hidden) return;
    var box = tooltip.getBoundingClientRect(), x, y;
    var fits = function (value, size, limit) { return value >= 4 && value + size <= limit - 4; };
    if (tipAnchor && tipAnchor.kind === "row") {
      var table = tipAnchor.table.getBoundingClientRect(), row = tipAnchor.node.getBoundingClientRect();
      x = table.left - box.width - 10;
      if (!fits(x, box.width, window.innerWidth)) x = table.right + 10;
      y = row.top + row.height / 2 - box.height / 2;
    } else if (tipAnchor && tipAnchor.kind === "col") {
      var tableBox = tipAnchor.table.getBoundingClientRect(), col = tipAnchor.node.getBoundingClientRect();
      x = col.left + col.width / 2 - box.width / 2;
      y = tableBox.top - box.height - 8;
      if (!fits(y, box.height, window.innerHeight)) y = tableBox.bottom + 8;
    } else {
      x = event.clientX + 14;
      y = event.clientY - box.height - 14;
      if (!fits(y, box.height, window.innerHeight)) y = event.clientY + 18;
    }
    tooltip.style.left = Math.max(4, Math.min(x, window.innerWidth - box.width - 4)) + "px";
    tooltip.style.top = Math.max(4, Math.min(y, window.innerHeight - box.height - 4)) + "px";
  }

  function moveTooltip(event) {
    if (!tipAnchor) placeTooltip(event);
  }

  function quote(token) { return "“" + token + "”"; }

  function onHeatmapOver(event) {
    var target = event.target.closest(".cell, .row-label, .col-label");
    if (!target) return;
    var table = target.closest("table.heatmap");
    clearHover();
    hover.table = table;
    table.classList.add("focus");
    var cols = table.querySelectorAll(".col-label"), rows = table.querySelectorAll(".row-label");
    if (target.classList.contains("row-label")) {
      var r = target.dataset.r, best = 0, bestToken = null;
      target.classList.add("active");
      table.querySelectorAll('.cell[data-r="' + r + '"]').forEach(function (cell) { cell.classList.add("hl"); });
      cols.forEach(function (th) {
        var w = weightAt(table, r, th.dataset.c);
        th.style.setProperty("--a", w.toFixed(3));
        th.classList.add("attended");
        if (w > best) { best = w; bestToken = th.dataset.token; }
      });
      showTooltip(event, [["tip-head", "output " + quote(target.dataset.token)],
        ["tip-body", bestToken === null ? "looks at no source token (every weight is 0: a model without attention)" :
          "looks most at " + quote(bestToken) + " (" + formatWeight(best) + ")"]],
      {kind: "row", node: target, table: table});
    } else if (target.classList.contains("col-label")) {
      var c = target.dataset.c, total = 0;
      target.classList.add("active");
      table.querySelectorAll('.cell[data-c="' + c + '"]').forEach(function (cell) { cell.classList.add("hl"); });
      var strongest = [];
      rows.forEach(function (th) {
        var w = weightAt(table, th.dataset.r, c);
        total += w;
        th.style.setProperty("--a", w.toFixed(3));
        th.classList.add("attended");
        if (w >= 0.3) strongest.push(quote(th.dataset.token));
      });
      showTooltip(event, [["tip-head", "source " + quote(target.dataset.token)],
        ["tip-body", strongest.length ? "looked at while producing " + strongest.join(", ") :
          "no produced word looks at it strongly (≥ 0.3)"],
        ["tip-foot", "attention received, summed over the output: " + total.toFixed(2)]],
      {kind: "col", node: target, table: table});
    } else {
      var row = table.querySelector('.row-label[data-r="' + target.dataset.r + '"]');
      var col = table.querySelector('.col-label[data-c="' + target.dataset.c + '"]');
      target.classList.add("active");
      row.classList.add("active");
      col.classList.add("active");
      showTooltip(event, [["tip-head", quote(row.dataset.token) + " ← " + quote(col.dataset.token)],
        ["tip-body", "attention weight " + formatWeight(Number(target.dataset.w))]], null);
    }
  }

  // ------------------------------------------------------------------ actions

  function select(i, reveal) {
    state.selected = i;
    var list = order();
    var position = list.indexOf(i);
    if (position >= 0 && state.pageSize !== Infinity) {
      var page = Math.floor(position / state.pageSize);
      if (page !== state.page) { state.page = page; renderTable(); }
    }
    markSelected();
    renderDetail();
    if (reveal) {
      var body = $("sentences").querySelector('tbody.sentence[data-index="' + i + '"]');
      if (body) body.scrollIntoView({block: "nearest"});
    }
  }

  function step(delta) {
    var list = order();
    if (!list.length) return;
    var position = list.indexOf(state.selected);
    var next = position < 0 ? 0 : Math.max(0, Math.min(list.length - 1, position + delta));
    select(list[next], true);
  }

  // redraw after a change of the rows; ``restart``: back to page 1 and its first sentence (new search, filter, sort)
  function refresh(restart) {
    invalidate();
    var list = order();
    if (restart) {
      state.page = 0;
      state.selected = null;
    }
    if (list.length && list.indexOf(state.selected) < 0) state.selected = list[0];
    if (!list.length) state.selected = null;
    renderTable();
    renderDetail();
  }

  var queryTimer = null;

  function wire() {
    $("pair-switch").addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button || Number(button.dataset.value) === state.pair) return;
      state.pair = Number(button.dataset.value);
      state.selected = null;
      renderHeader();
      refresh(true);
    });
    $("search-switch").addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button || button.dataset.value === state.search) return;
      state.search = button.dataset.value;
      setSegment($("search-switch"), state.search);
      renderRunChips();
      refresh(false);
    });
    $("view-switch").addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button) return;
      state.view = button.dataset.value;
      setSegment($("view-switch"), state.view);
      renderDetail();
    });
    $("run-chips").addEventListener("click", function (event) {
      var chip = event.target.closest(".chip");
      if (!chip) return;
      var p = pair(), k = Number(chip.dataset.run);
      if (p.shown[k] && p.shownRuns().length === 1) return; // keep one
      p.shown[k] = !p.shown[k];
      chip.setAttribute("aria-pressed", p.shown[k] ? "true" : "false");
      refresh(false);
    });
    $("run-chips").addEventListener("dblclick", function (event) {
      var chip = event.target.closest(".chip");
      if (!chip) return;
      var p = pair(), k = Number(chip.dataset.run);
      p.shown = p.runs.map(function (run, j) { return j === k; });
      renderRunChips();
      refresh(false);
    });
    $("query").addEventListener("input", function () {
      clearTimeout(queryTimer);
      queryTimer = setTimeout(function () {
        state.query = $("query").value;
        refresh(true);
      }, 120);
    });
    $("filter").addEventListener("change", function () { state.filter = this.value; refresh(true); });
    $("sort").addEventListener("change", function () { state.sort = this.value; refresh(true); });
    $("page-size").addEventListener("change", function () {
      state.pageSize = this.value === "all" ? Infinity : Number(this.value);
      state.page = 0;
      renderTable();
      markSelected();
    });
    $("prev-page").addEventListener("click", function () { state.page--; renderTable(); $("table-wrap").scrollTop = 0; });
    $("next-page").addEventListener("click", function () { state.page++; renderTable(); $("table-wrap").scrollTop = 0; });
    $("prev-sentence").addEventListener("click", function () { step(-1); });
    $("next-sentence").addEventListener("click", function () { step(1); });
    $("numbers").addEventListener("change", function () { state.numbers = this.checked; renderDetail(); });
    $("sentences").addEventListener("click", function (event) {
      var body = event.target.closest("tbody.sentence");
      if (!body) return;
      select(Number(body.dataset.index), false);
      if (window.matchMedia("(max-width: 1100px)").matches) $("detail").scrollIntoView({behavior: "smooth"});
    });
    var cards = $("cards");
    cards.addEventListener("mouseover", onHeatmapOver);
    cards.addEventListener("mousemove", moveTooltip);
    cards.addEventListener("mouseleave", clearHover);
    cards.addEventListener("mouseout", function (event) {
      if (!event.relatedTarget || !event.relatedTarget.closest || !event.relatedTarget.closest("table.heatmap")) {
        clearHover();
      }
    });
    document.addEventListener("keydown", function (event) {
      var tag = event.target.tagName;
      if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || event.altKey || event.ctrlKey ||
          event.metaKey) return;
      if (event.key === "ArrowDown" || event.key === "j") { step(1); event.preventDefault(); }
      if (event.key === "ArrowUp" || event.key === "k") { step(-1); event.preventDefault(); }
      if (event.key === "/") { $("query").focus(); event.preventDefault(); }
    });
  }

  function legend() {
    var stops = VIRIDIS.map(function (c, k) { return "rgb(" + c.join(",") + ") " + (k * 10) + "%"; });
    $("legend-bar").style.background = "linear-gradient(to right, " + stops.join(", ") + ")";
  }

  function start() {
    legend();
    renderHeader();
    wire();
    refresh(true);
    window.explorerReadyAt = performance.now();
    document.documentElement.dataset.ready = "true";
  }

  // for tests and the curious: the decoded data of a sentence, as the page draws it
  window.explorer = {
    state: state,
    matrix: function (pairIndex, runIndex, search, i) {
      var m = PAIRS[pairIndex].runs[runIndex].searches[search].matrix(i);
      return {rows: m.rows, cols: m.cols, w: Array.from(m.w)};
    },
    order: function () { return order().slice(); },
  };

  try {
    start();
  } catch (error) {
    document.documentElement.dataset.ready = "error";
    document.body.insertBefore(el("p", {className: "fatal", text: "The explorer could not start: " + error.message}),
      document.body.firstChild);
    throw error;
  }
})();
