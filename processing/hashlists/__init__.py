"""Hash lists: parsing the formats that hotlines, regulators and Hasher-Matcher-Actioner exchange."""
