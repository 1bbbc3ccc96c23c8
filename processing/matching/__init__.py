"""Matching: hash indexes and match rules. Pure: arrays in, arrays out; persisting is storage's job."""
