# Evaluation: greedy and beam search over the held-out test split, BLEU/chrF with sacrebleu. A {system} is a
# training run or an ensemble of runs (its members' checkpoints decode as one model).


rule evaluate:
    input:
        models=system_checkpoints,
        test="results/{pair}/data/test.tsv",
        code=package_sources("evaluate"),
    output:
        translations=report(
            "results/{pair}/{system}/translations.tsv",
            caption="../report/translations.rst",
            category="Evaluation",
            subcategory="{pair}",
            labels={"pair": "{pair}", "system": "{system}", "file": "translations"},
        ),
        metrics=report(
            "results/{pair}/{system}/metrics.json",
            caption="../report/metrics.rst",
            category="Evaluation",
            subcategory="{pair}",
            labels={"pair": "{pair}", "system": "{system}", "file": "metrics"},
        ),
        attention="results/{pair}/{system}/attention.json.gz",
    log:
        "results/logs/evaluate/{pair}/{system}.log",
    benchmark:
        "results/benchmarks/evaluate/{pair}/{system}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: config["resources"]["evaluate"]["threads"]
    resources:
        gpu=config["resources"]["evaluate"]["gpu"],
        mem_mb=config["resources"]["evaluate"]["mem_mb"],
        runtime=config["resources"]["evaluate"]["runtime"],
    params:
        settings=rule_param(config["evaluation"]),
        # the members in order (inputs compare as a set): an ensemble's first member names it in metrics.json
        members=system_checkpoints,
    script:
        "../scripts/stage.py"
