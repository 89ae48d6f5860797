# Explorer: one self-contained HTML page to browse every test sentence of every pair x system, its translations,
# scores and attention heatmaps (from what the evaluate stage wrote: no second decoding).


rule explorer:
    input:
        translations=expand("results/{pair}/{system}/translations.tsv", pair=PAIRS, system=SYSTEMS),
        attention=expand("results/{pair}/{system}/attention.json.gz", pair=PAIRS, system=SYSTEMS),
        code=package_sources("explorer"),
        # the page's HTML, CSS and JavaScript, inlined into it
        assets=sorted(str(p) for p in (PACKAGE / "explorer_assets").glob("explorer.*")),
    output:
        html=report(
            "results/explorer.html",
            caption="../report/explorer.rst",
            category="Explorer",
            labels={"file": "explorer"},
        ),
    log:
        "results/logs/explorer/explorer.log",
    conda:
        "../../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=config["resources"]["figures"]["mem_mb"],
        runtime=config["resources"]["figures"]["runtime"],
    params:
        labels=[[pair, system] for pair in PAIRS for system in SYSTEMS],
    script:
        "../scripts/stage.py"
