# the corpora of submissions (notebooks with their helper files, hostile ones) are graded, never collected
collect_ignore = ["notebooks", "hostile"]
