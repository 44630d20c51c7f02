# SPDX-License-Identifier: MIT
# Sourced by the bench scripts. results_rows TITLE: the table rows on stdin
# go after the last table row of the section of bench/RESULTS.md whose
# heading begins "## TITLE" (the script has made the section if it was
# missing), so each section's rows stay under its own table however many
# sections follow it.
RESULTS=bench/RESULTS.md
results_rows() {
    local rows
    rows=$(cat)
    TITLE="## $1" ROWS="$rows" awk '
        { lines[NR] = $0 }
        index($0, ENVIRON["TITLE"]) == 1 { insec = 1; next }
        insec && /^## / { insec = 0 }
        insec && /^\|/ { last = NR }
        END {
            for (i = 1; i <= NR; i++) {
                print lines[i]
                if (i == last) print ENVIRON["ROWS"]
            }
            if (!last) print ENVIRON["ROWS"]
        }' "$RESULTS" > "$RESULTS.tmp"
    mv "$RESULTS.tmp" "$RESULTS"
}
