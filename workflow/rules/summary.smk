# Summary across every pair x system: one table (TSV and Markdown) with the spread over seeds, the comparisons
# with the baseline (paired significance tests), and a chart.


rule summary:
    input:
        metrics=expand("results/{pair}/{system}/metrics.json", pair=PAIRS, system=SYSTEMS),
        translations=expand("results/{pair}/{system}/translations.tsv", pair=PAIRS, system=SYSTEMS),
        histories=expand("results/{pair}/{run}/history.tsv", pair=PAIRS, run=RUNS),
        code=package_sources("summary"),
    output:
        tsv=report(
            "results/summary.tsv",
            caption="../report/summary.rst",
            category="Summary",
            labels={"file": "table"},
        ),
        md="results/summary.md",
        chart=report(
            "results/summary.png",
            caption="../report/summary_chart.rst",
            category="Summary",
            labels={"file": "chart"},
        ),
        comparisons=report(
            "results/comparisons.tsv",
            caption="../report/comparisons.rst",
            category="Summary",
            labels={"file": "comparisons"},
        ),
    log:
        "results/logs/summary/summary.log",
    conda:
        "../../envs/plot.yaml"
    params:
        labels=summary_labels(),
        baseline=baseline(config),
        compare=rule_param(config["compare"]),
        min_interval_sentences=config["evaluation"]["min_interval_sentences"],
    script:
        "../scripts/stage.py"
