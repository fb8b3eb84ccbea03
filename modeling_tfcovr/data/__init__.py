"""Datasets of the project: TF-CoVR annotations and embeddings as parquet, and the synthetic gym.

- `build_tfcovr_dataset`: official CSVs -> `data/{train,val,test}.parquet` in `TRIPLET_SCHEMA`.
- `write_embeddings_parquet` / `read_embeddings`: the embeddings dataset format;
  `convert_pickle_embeddings`: the official pickle stream -> that format (needs `trust_pickle=True`).
- `build_synthetic_benchmark`: the synthetic temporally fine-grained benchmark.
- `TFCOVR_STAGE1_LABELS` / `get_label_set("tfcovr-306")`: the official 306-class stage-1 label space.
"""

from .embeddings import (
    convert_pickle_embeddings,
    embeddings_schema,
    load_pickle_embeddings,
    read_embeddings,
    validate_embeddings,
    write_embeddings_parquet,
)
from .label_sets import FINEDIVING_LABELS, FINEGYM_LABELS, LABEL_SETS, TFCOVR_STAGE1_LABELS, get_label_set, id2label_of
from .synthetic import (
    CLIP_SCHEMA,
    ClipParams,
    SyntheticConfig,
    SyntheticLabel,
    build_synthetic_benchmark,
    label_space,
    load_label_list,
    modification_text,
    render_clip,
    reverse_clip_params,
    sample_clip_params,
)
from .tfcovr_csv import (
    SPLITS,
    TRIPLET_COLUMNS,
    TRIPLET_SCHEMA,
    RowError,
    build_tfcovr_dataset,
    derive_source,
    find_split_csvs,
    parse_split_csv,
    triplets_to_table,
    write_parquet_atomic,
)

__all__ = [
    "FINEDIVING_LABELS",
    "FINEGYM_LABELS",
    "LABEL_SETS",
    "TFCOVR_STAGE1_LABELS",
    "get_label_set",
    "id2label_of",
    "CLIP_SCHEMA",
    "SPLITS",
    "TRIPLET_COLUMNS",
    "TRIPLET_SCHEMA",
    "ClipParams",
    "RowError",
    "SyntheticConfig",
    "SyntheticLabel",
    "build_synthetic_benchmark",
    "build_tfcovr_dataset",
    "convert_pickle_embeddings",
    "derive_source",
    "embeddings_schema",
    "find_split_csvs",
    "label_space",
    "load_label_list",
    "load_pickle_embeddings",
    "modification_text",
    "parse_split_csv",
    "read_embeddings",
    "render_clip",
    "reverse_clip_params",
    "sample_clip_params",
    "triplets_to_table",
    "validate_embeddings",
    "write_embeddings_parquet",
    "write_parquet_atomic",
]
