# Parse --name value / --name=value options into shell variables (source it).
#
# Every option must name a variable the calling script already defined, so a
# typo is an error, not a silently ignored flag. Dashes in names become
# underscores (--stop-stage == --stop_stage). A variable whose current value is
# true/false may be given without a value (--force means --force true).
# --help / -h prints "$help_message" and exits.
#
#   stage=0; force=false; help_message="usage: ..."
#   . utils/parse_options.sh
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help)
      printf '%s\n' "${help_message:-no help available}"
      exit 0 ;;
    --*=*)
      _po_name="${1%%=*}"; _po_name="${_po_name#--}"; _po_value="${1#*=}"; shift ;;
    --*)
      _po_name="${1#--}"; shift
      _po_var="${_po_name//-/_}"
      if [ -n "${_po_var}" ] && eval "[ \"\${${_po_var}+set}\" = set ]" 2>/dev/null; then
        eval "_po_cur=\"\${${_po_var}}\""
      else
        _po_cur=""
      fi
      if { [ "${_po_cur}" = true ] || [ "${_po_cur}" = false ]; } && \
         { [ $# -eq 0 ] || [[ "$1" == --* ]]; }; then
        _po_value=true
      elif [ $# -eq 0 ]; then
        echo "$0: option --${_po_name} needs a value (see --help)" >&2; exit 2
      else
        _po_value="$1"; shift
      fi ;;
    *)
      echo "$0: unexpected argument '$1'; options look like --name value (see --help)" >&2
      exit 2 ;;
  esac
  _po_var="${_po_name//-/_}"
  if ! [[ "${_po_var}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || \
     ! eval "[ \"\${${_po_var}+set}\" = set ]"; then
    _po_hint="$(python3 -c 'import difflib,sys; m=difflib.get_close_matches(sys.argv[1], sys.argv[2:], 1, 0.6); print(f" (did you mean --{m[0]}?)" if m else "")' "${_po_var}" ${_po_options:-} 2>/dev/null || true)"
    echo "$0: unknown option --${_po_name}${_po_hint}; see --help" >&2
    exit 2
  fi
  printf -v "${_po_var}" '%s' "${_po_value}"
done
unset _po_name _po_value _po_var _po_cur _po_hint
