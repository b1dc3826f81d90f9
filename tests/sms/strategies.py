"""Hypothesis strategies shared by the sms tests."""

from __future__ import annotations

from hypothesis import strategies as st

from sms.gsm7 import DEFAULT_CHARACTERS, EXTENSION_CHARACTERS

gsm_default_chars = st.sampled_from(sorted(DEFAULT_CHARACTERS))
gsm_extension_chars = st.sampled_from(sorted(EXTENSION_CHARACTERS))
gsm_chars = st.one_of(gsm_default_chars, gsm_extension_chars)
gsm_text = st.text(alphabet=gsm_chars, max_size=400)

astral_chars = st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF, codec="utf-8")
bmp_chars = st.characters(max_codepoint=0xFFFF, codec="utf-8")
# Weighted towards the interesting cases: extension characters (2 septets) and astral
# characters (surrogate pairs), near part boundaries.
mixed_chars = st.one_of(gsm_default_chars, gsm_extension_chars, bmp_chars, astral_chars)
mixed_text = st.text(alphabet=mixed_chars, max_size=600)
any_text = st.text(max_size=300)
