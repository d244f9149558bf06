"""repmix-base-lcm: Base Large Concept Model (next-sentence-embedding prediction)."""

from repmix_base_lcm.lcm import NORMAL_IQR, BaseLCM, RobustScaler, next_concept_loss, split_sentences

__all__ = ["NORMAL_IQR", "BaseLCM", "RobustScaler", "next_concept_loss", "split_sentences"]
