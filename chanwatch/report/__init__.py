"""The flagged-items report: figures from the datasets and the review database, charts, one HTML file."""
