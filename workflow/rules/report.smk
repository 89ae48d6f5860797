# Summary across every pair x model: one table (TSV and Markdown) and a comparison chart.


rule summary:
    input:
        metrics=expand("results/{pair}/{model}/metrics.json", pair=PAIRS, model=MODELS),
        histories=expand("results/{pair}/{model}/history.tsv", pair=PAIRS, model=MODELS),
        models=expand("results/{pair}/{model}/model.pt", pair=PAIRS, model=MODELS),
        code=package_sources("summary"),
    output:
        tsv=report("results/summary.tsv", caption="../report/summary.rst", category="Summary",
                   labels={"file": "table"}),
        md="results/summary.md",
        chart=report("results/summary.png", caption="../report/summary_chart.rst", category="Summary",
                     labels={"file": "chart"}),
    params:
        labels=[[pair, model] for pair in PAIRS for model in MODELS],
    log:
        "results/logs/summary/summary.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/summary.py"
