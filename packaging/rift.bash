# rift.bash — bash completion for rift (install to /usr/share/bash-completion/completions/rift).
_rift() {
	local cur prev cmds
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	cmds="init serve create delete list ls status url psql reset start stop log diff mount dashboard version"
	case "$prev" in
	--state | --pgdata)
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--upstream-password-file | --token-file | --cacert)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--output)
		COMPREPLY=($(compgen -W "text env url" -- "$cur"))
		return
		;;
	delete | url | psql | reset | start | stop | log | diff | mount | --from)
		COMPREPLY=($(compgen -W "$(rift list --json 2>/dev/null |
			sed -n 's/.*"name":"\([^"]*\)".*/\1/p; s/},{/}\n{/g' |
			grep -o '"name":"[^"]*"' | cut -d'"' -f4)" -- "$cur"))
		return
		;;
	esac
	if [ "$COMP_CWORD" -eq 1 ] || [[ "$prev" == --json || "$prev" == -q ]]; then
		COMPREPLY=($(compgen -W "$cmds --help --version --json --state -q --host --token-file \
			--cacert --pin" -- "$cur"))
	else
		COMPREPLY=($(compgen -W "--help --json -q --from --ttl --max-size --new-password --output --port \
			--upstream --logical --upstream-password-file --pgdata --background --read-only \
			--label --stop --login-role" \
			-- "$cur"))
	fi
}
complete -F _rift rift
