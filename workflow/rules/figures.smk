# Figures: attention heatmaps for chosen test sentences, a grid of several, and the learning curve.


rule figures:
    input:
        model="results/{pair}/{model}/model.pt",
        test="results/{pair}/data/test.tsv",
        history="results/{pair}/{model}/history.tsv",
        code=package_sources("figures"),
    output:
        attention=[
            report(
                f"results/{{pair}}/{{model}}/figures/{name}.{FIGURE_FORMAT}",
                caption="../report/attention.rst",
                category="Attention",
                subcategory="{pair} {model}",
                labels={"pair": "{pair}", "model": "{model}", "figure": name},
            )
            for name in figure_names()
        ],
        grid=report(
            f"results/{{pair}}/{{model}}/figures/attention_grid.{FIGURE_FORMAT}",
            caption="../report/attention_grid.rst",
            category="Attention",
            subcategory="{pair} {model}",
            labels={"pair": "{pair}", "model": "{model}", "figure": "grid"},
        ),
        curve=report(
            f"results/{{pair}}/{{model}}/figures/learning_curve.{FIGURE_FORMAT}",
            caption="../report/learning_curve.rst",
            category="Training",
            subcategory="{pair}",
            labels={"pair": "{pair}", "model": "{model}", "file": "learning curve"},
        ),
    params:
        figures=config["figures"],
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "results/logs/figures/{pair}-{model}.log",
    conda:
        "../../envs/plot.yaml"
    script:
        "../scripts/figures.py"
