from repmix_unified_embedding.components import FeatureSpec, UnifiedEmbeddingEncoder, UnifiedFeatureTokenizer, feature_hash

__all__ = ["FeatureSpec", "UnifiedEmbeddingEncoder", "UnifiedFeatureTokenizer", "feature_hash"]
