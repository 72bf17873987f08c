# zsh -f zsh-complete.zsh DIR LINE: the candidates zsh's completion system offers when Tab is
# pressed at the end of LINE, one a line, sorted. DIR holds the completion files (_rewind).
# An interactive zsh on a pseudo-terminal (zsh/zpty) runs compinit with DIR first in fpath,
# with compadd wrapped to print each candidate it adds as CAND:WORD; Enter is unbound, so the
# line is never run.
dir=${1:A} line=$2
zmodload zsh/zpty || exit 2
zpty z zsh -f -i
zpty -w z "unsetopt prompt_sp; unset zle_bracketed_paste; PS1=''; fpath=(${(q)dir} \$fpath); autoload -Uz compinit; compinit -u -D; zstyle ':completion:*' insert-tab false; compadd() { local -a m; builtin compadd -A m \"\$@\"; print -rl -- \${m/#/CAND:}; builtin compadd \"\$@\"; }; bindkey '^I' complete-word; bindkey -r '^M' '^J'; print -r -- READ''Y"
out='' chunk=''
integer i
for i in {1..100}; do
    if zpty -r -t z chunk; then
        out+=$chunk
        [[ $out == *READY* ]] && break
    else
        sleep 0.1
    fi
done
[[ $out == *READY* ]] || { print -u2 "zsh did not start: $out"; exit 2; }
out=''
zpty -w -n z "$line"$'\t'
# Candidates arrive at once; 3 s of quiet is the end.
for i in {1..30}; do
    if zpty -r -t z chunk; then out+=$chunk; else sleep 0.1; fi
done
zpty -d z
print -r -- "$out" | tr -d '\r' | sed -n 's/^.*CAND:\([^[:space:]]*\).*$/\1/p' | sort -u
