"""TF-CoVR in the Hugging Face ecosystem: composed video retrieval for temporally fine-grained videos.

Importing the package registers the TF-CoVR classes with transformers' Auto classes, so that
`AutoModel`, `AutoModelForVideoClassification`, `AutoProcessor` and `AutoVideoProcessor` load
saved TF-CoVR folders, and marks them for `register_for_auto_class` so that `save_pretrained`
writes `auto_map` and the code files (the folders then load with `trust_remote_code=True`
where this package is not installed).
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForVideoClassification,
    AutoProcessor,
    AutoVideoProcessor,
)
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_tfcovr import TFCoVRConfig, TFCoVRVisionConfig
from .errors import DataFormatError, TFCoVRError, UnsafePathError, UntrustedFileError, VideoDecodeError
from .hub import load_hub_dataset
from .loss_tfcovr import hn_nce_loss, hn_nce_loss_from_logits
from .metrics import METRIC_PATH, load_metric
from .modeling_tfcovr import (
    TFCoVRForVideoClassification,
    TFCoVRModel,
    TFCoVROutput,
    TFCoVRPreTrainedModel,
    TFCoVRVideoClassifierOutput,
    TFCoVRVisionModel,
    TFCoVRVisionModelOutput,
    adapter_initialization,
    load_vision_encoder,
)
from .pipeline_tfcovr import TASK as PIPELINE_TASK
from .pipeline_tfcovr import ComposedVideoRetrievalPipeline, save_for_pipeline
from .processing_tfcovr import TFCoVRProcessor
from .retrieval_index import RetrievalIndex, SearchResult
from .text_normalization import normalize_modification_text
from .tokenization_utils import build_word_level_tokenizer
from .video_processing_tfcovr import TFCoVRVideoProcessor


def _register() -> None:
    AutoConfig.register(TFCoVRConfig.model_type, TFCoVRConfig, exist_ok=True)
    AutoConfig.register(TFCoVRVisionConfig.model_type, TFCoVRVisionConfig, exist_ok=True)
    AutoModel.register(TFCoVRConfig, TFCoVRModel, exist_ok=True)
    AutoModel.register(TFCoVRVisionConfig, TFCoVRVisionModel, exist_ok=True)
    AutoModelForVideoClassification.register(TFCoVRConfig, TFCoVRForVideoClassification, exist_ok=True)
    AutoVideoProcessor.register(TFCoVRConfig, TFCoVRVideoProcessor, exist_ok=True)
    AutoProcessor.register(TFCoVRConfig, TFCoVRProcessor, exist_ok=True)

    TFCoVRConfig.register_for_auto_class()
    TFCoVRVisionConfig.register_for_auto_class()
    TFCoVRModel.register_for_auto_class("AutoModel")
    TFCoVRVisionModel.register_for_auto_class("AutoModel")
    TFCoVRForVideoClassification.register_for_auto_class("AutoModelForVideoClassification")
    TFCoVRVideoProcessor.register_for_auto_class("AutoVideoProcessor")
    TFCoVRProcessor.register_for_auto_class("AutoProcessor")
    PIPELINE_REGISTRY.register_pipeline(
        PIPELINE_TASK, pipeline_class=ComposedVideoRetrievalPipeline, pt_model=AutoModel
    )


_register()

__all__ = [
    "adapter_initialization",
    "TFCoVRConfig",
    "TFCoVRVisionConfig",
    "TFCoVRVisionModel",
    "TFCoVRForVideoClassification",
    "TFCoVRModel",
    "TFCoVRPreTrainedModel",
    "TFCoVROutput",
    "TFCoVRVideoClassifierOutput",
    "TFCoVRVisionModelOutput",
    "TFCoVRVideoProcessor",
    "TFCoVRProcessor",
    "hn_nce_loss",
    "hn_nce_loss_from_logits",
    "ComposedVideoRetrievalPipeline",
    "save_for_pipeline",
    "RetrievalIndex",
    "SearchResult",
    "METRIC_PATH",
    "load_metric",
    "load_hub_dataset",
    "load_vision_encoder",
    "normalize_modification_text",
    "build_word_level_tokenizer",
    "TFCoVRError",
    "VideoDecodeError",
    "DataFormatError",
    "UnsafePathError",
    "UntrustedFileError",
]
