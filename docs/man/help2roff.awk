# help2roff.awk - one `tern CMD --help` text as man(7) source, for tern(1)
# (docs/man/gen-tern-man.sh runs it on each command's --help, so the manual
# says what the program says and cannot drift from options.c's table).
#
#   awk -f help2roff.awk < help-text
#
# The help texts have one shape: an introduction, a "Usage:" block (kept
# as it is, in .nf), headings (.SS: a line at column 0 ending in ':',
# after a blank line), option lines starting with a blank then '-' ("-m :
# text" or "-h, --host HOST   text"; .TP), lines indented further that
# continue the option above, and paragraphs. "tern version X." lines are
# left out: the page's header carries the version.

# Text for roff: backslashes escaped, a leading '.' or '\'' protected, and
# a '-' that starts a word written as a minus (an option), not a hyphen.
function esc(s) {
	gsub(/\\/, "\\e", s)
	gsub(/--/, "\\-\\-", s)
	gsub(/ -/, " \\-", s)
	gsub(/\(-/, "(\\-", s)
	gsub(/\[-/, "[\\-", s)
	gsub(/\{-/, "{\\-", s)
	gsub(/\|-/, "|\\-", s)
	gsub(/'-/, "'\\-", s)
	if (s ~ /^-/)
		s = "\\" s
	if (s ~ /^[.']/)
		s = "\\&" s
	return s
}

# An option's synopsis, "-h, --host HOST": the options bold, their
# arguments italic.
function tag(s,    n, w, i, out, word, sep) {
	n = split(s, w, " ")
	out = ""
	for (i = 1; i <= n; i++) {
		word = w[i]
		sep = ""
		if (word ~ /,$/) {
			sep = ","
			word = substr(word, 1, length(word) - 1)
		}
		gsub(/\\/, "\\e", word)
		if (word ~ /^-/) {
			gsub(/-/, "\\-", word)
			word = "\\fB" word "\\fR"
		} else {
			word = "\\fI" word "\\fR"
		}
		out = out (i > 1 ? " " : "") word sep
	}
	return out
}

function end_block() {
	if (in_usage)
		print ".fi"
	in_usage = 0
	in_option = 0
	in_para = 0
}

BEGIN { in_usage = 0; in_option = 0; in_para = 0; after_blank = 1 }

{
	was_blank = after_blank
	after_blank = ($0 ~ /^[ \t]*$/)
}

/^tern version / { next }

/^[ \t]*$/ { end_block(); next }

/^Usage:/ {
	end_block()
	print ".PP"
	print ".nf"
	in_usage = 1
}

# The usage block goes on to a blank line, a line at column 0 that is not
# another "Usage:", or an option line (a '-' after at most three blanks:
# the usage's own lines are indented under "Usage: ").
in_usage && (/^ / || /^Usage:/) && !/^ ? ? ?-/ {
	print esc($0)
	next
}

in_usage { end_block() }

# A heading: a line of its own at column 0, ending with ':', after a blank
# line (else it ends a sentence that goes on below).
was_blank && /^[^ -].*:$/ {
	end_block()
	h = substr($0, 1, length($0) - 1)
	print ".SS " esc(h)
	next
}

/^ +-/ {
	end_block()
	line = $0
	sub(/^ +/, "", line)
	desc = ""
	if ((i = index(line, " : ")) > 0) {
		opt = substr(line, 1, i - 1)
		desc = substr(line, i + 3)
	} else if (match(line, /   */)) {
		opt = substr(line, 1, RSTART - 1)
		desc = substr(line, RSTART + RLENGTH)
	} else {
		opt = line
	}
	print ".TP"
	print tag(opt)
	if (desc != "")
		print esc(desc)
	in_option = 1
	next
}

# A continuation of the option above, or of a paragraph.
/^ / && (in_option || in_para) {
	line = $0
	sub(/^ +/, "", line)
	print esc(line)
	next
}

{
	if (!in_para && !in_option) {
		print ".PP"
		in_para = 1
	}
	line = $0
	sub(/^ +/, "", line)
	print esc(line)
}

END { end_block() }
