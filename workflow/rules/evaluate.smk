# Evaluation: greedy and beam search over the held-out test split, BLEU/chrF with sacrebleu.


rule evaluate:
    input:
        model="results/{pair}/{model}/model.pt",
        test="results/{pair}/data/test.tsv",
        code=package_sources("evaluate"),
    output:
        translations=report(
            "results/{pair}/{model}/translations.tsv",
            caption="../report/translations.rst",
            category="Evaluation",
            subcategory="{pair}",
            labels={"pair": "{pair}", "model": "{model}", "file": "translations"},
        ),
        metrics=report(
            "results/{pair}/{model}/metrics.json",
            caption="../report/metrics.rst",
            category="Evaluation",
            subcategory="{pair}",
            labels={"pair": "{pair}", "model": "{model}", "file": "metrics"},
        ),
    params:
        evaluation=config["evaluation"],
    threads: config["resources"]["evaluate"]["threads"]
    resources:
        gpu=config["resources"]["evaluate"]["gpu"],
        mem_mb=config["resources"]["evaluate"]["mem_mb"],
        runtime=config["resources"]["evaluate"]["runtime"],
    log:
        "results/logs/evaluate/{pair}-{model}.log",
    benchmark:
        "results/benchmarks/evaluate/{pair}-{model}.tsv"
    conda:
        "../../envs/train.yaml"
    script:
        "../scripts/evaluate.py"
