#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The installed bash completion completes anserctl's commands and options.
# $1: data/completion/anserctl.
[[ -r /usr/share/bash-completion/bash_completion ]] || { echo "no bash-completion"; exit 77; }
source /usr/share/bash-completion/bash_completion
source "$1"
complete_words() {
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="${COMP_WORDS[*]}"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    _anserctl
    echo "${COMPREPLY[*]}"
}
fail=0
check() { # want got
    [[ " $2 " == *" $1 "* ]] || { echo "want '$1' in '$2'"; fail=1; }
}
check route "$(complete_words anserctl ro)"
check routes "$(complete_words anserctl ro)"
check select "$(complete_words anserctl se)"
check test-nodes "$(complete_words anserctl te)"
check --json "$(complete_words anserctl --j)"
check "pname(" "$(complete_words anserctl route pn)"
check direct "$(complete_words anserctl route 'pname(x)' d)"
[[ $fail == 0 ]] && echo ok
exit $fail
