# Figures: attention heatmaps for chosen test sentences, a grid of several, and the learning curve, per run.


rule figures:
    input:
        model="results/{pair}/{run}/model.pt",
        test="results/{pair}/data/test.tsv",
        history="results/{pair}/{run}/history.tsv",
        code=package_sources("figures"),
    output:
        attention=[
            report(
                f"results/{{pair}}/{{run}}/figures/{name}.{FIGURE_FORMAT}",
                caption="../report/attention.rst",
                category="Attention",
                subcategory="{pair} {run}",
                labels={"pair": "{pair}", "run": "{run}", "figure": name},
            )
            for name in figure_names()
        ],
        grid=report(
            f"results/{{pair}}/{{run}}/figures/attention_grid.{FIGURE_FORMAT}",
            caption="../report/attention_grid.rst",
            category="Attention",
            subcategory="{pair} {run}",
            labels={"pair": "{pair}", "run": "{run}", "figure": "grid"},
        ),
        curve=report(
            f"results/{{pair}}/{{run}}/figures/learning_curve.{FIGURE_FORMAT}",
            caption="../report/learning_curve.rst",
            category="Training",
            subcategory="{pair}",
            labels={"pair": "{pair}", "run": "{run}", "file": "learning curve"},
        ),
    log:
        "results/logs/figures/{pair}/{run}.log",
    conda:
        "../../envs/plot.yaml"
    threads: config["resources"]["figures"]["threads"]
    resources:
        mem_mb=config["resources"]["figures"]["mem_mb"],
        runtime=config["resources"]["figures"]["runtime"],
    params:
        settings=rule_param(figure_settings()),
    script:
        "../scripts/stage.py"
