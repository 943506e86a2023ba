# md2man.awk - ternd.conf(5) from README.md's table of directives.
#
#   awk -v readme=README.md -v mosq=docs/man/mosquitto-directives \
#       -v version=V -f md2man.awk docs/man/ternd.conf.5.in > ternd.conf.5
#
# README's table is the one description of the directives; the manual is
# made of it, so the two cannot say different things. The part of README
# between "<!-- directives: begin" and "<!-- directives: end -->" is read:
# each "#### Title" becomes a subsection (.SS), each table row a tagged
# paragraph (.TP) whose tag is the first cell (the directive and its
# arguments: the name bold, the arguments italic) and whose body is the
# second. The tag ends with "[mosquitto]" when mosquitto.conf has the
# directives (the list in `mosq`), "[ternd]" when they are ternd's own, or
# "[mosquitto: NAMES]" for the ones mosquitto has. The template's line @DIRECTIVES@ is replaced by that;
# @PROJECT_VERSION@ anywhere by the version. What it cannot read (a row
# without two cells) is left out with a warning on stderr, not a failed
# build: tests/install/check_man.py fails on the warning, and on the
# directive missing from the page.

# Plain text for roff: backslashes escaped, a leading '.' or '\'' protected.
function esc(s) {
	gsub(/\\/, "\\e", s)
	return s
}

function protect(s) {
	if (s ~ /^[.']/)
		s = "\\&" s
	return s
}

# A code span: in a tag, its first word is the directive (bold) and the rest
# its arguments (italic); in a body, all of it bold.
function code(s, in_tag,    w) {
	s = esc(s)
	gsub(/-/, "\\-", s)
	if (!in_tag)
		return "\\fB" s "\\fR"
	if (match(s, / /)) {
		w = substr(s, 1, RSTART - 1)
		return "\\fB" w "\\fR \\fI" substr(s, RSTART + 1) "\\fR"
	}
	return "\\fB" s "\\fR"
}

# Markdown inline text (code spans in backquotes) as roff.
function inline(s, in_tag,    out, n, parts, i) {
	n = split(s, parts, "`")
	out = ""
	for (i = 1; i <= n; i++)
		out = out (i % 2 == 0 ? code(parts[i], in_tag) : esc(parts[i]))
	return out
}

# The directive names of a first cell: the first word of each code span.
function names(s, list,    n, parts, i, k, w) {
	n = split(s, parts, "`")
	k = 0
	for (i = 2; i <= n; i += 2) {
		w = parts[i]
		sub(/ .*/, "", w)
		list[++k] = w
	}
	return k
}

function row(line,    cells, n, tag, body, list, k, i, ours, theirs, sep) {
	# "\|" is a '|' inside a cell; split on the others.
	gsub(/\\\|/, "\001", line)
	sub(/^\| */, "", line)
	sub(/ *\|$/, "", line)
	n = split(line, cells, / *\| */)
	if (n != 2) {
		printf "md2man.awk: %s:%d: expected 2 cells, found %d (an unescaped | ?): row left out\n", readme, NR_readme, n > "/dev/stderr"
		return
	}
	gsub(/\001/, "|", cells[1])
	gsub(/\001/, "|", cells[2])
	tag = inline(cells[1], 1)
	body = inline(cells[2], 0)
	k = names(cells[1], list)
	theirs = ""
	nt = 0
	for (i = 1; i <= k; i++)
		if (list[i] in mosquitto)
			theirs = theirs (nt++ ? ", " : "") "\\fB" esc(list[i]) "\\fR"
	if (nt == k)
		note = "mosquitto"
	else if (nt == 0)
		note = "ternd"
	else
		note = "mosquitto: " theirs
	print ".TP"
	print protect(tag) "\\ \\ [" note "]"
	print protect(body)
}

function directives(    line, inside) {
	inside = 0
	NR_readme = 0
	while ((getline line < readme) > 0) {
		NR_readme++
		if (line ~ /^<!-- directives: begin/) {
			inside = 1
			continue
		}
		if (line ~ /^<!-- directives: end/)
			break
		if (!inside || line ~ /^[ \t]*$/)
			continue
		if (line ~ /^#### /) {
			sub(/^#### /, "", line)
			print ".SS " protect(esc(line))
		} else if (line ~ /^\| directive \|/ || line ~ /^\|---/) {
			continue
		} else if (line ~ /^\| /) {
			row(line)
		} else {
			print ".PP"
			print protect(inline(line, 0))
		}
	}
	close(readme)
	if (!inside)
		print "md2man.awk: no '<!-- directives: begin' in " readme > "/dev/stderr"
}

BEGIN {
	while ((getline line < mosq) > 0)
		if (line !~ /^#/ && line != "")
			mosquitto[line] = 1
	close(mosq)
}

/^@DIRECTIVES@$/ { directives(); next }

{ gsub(/@PROJECT_VERSION@/, version); print }
