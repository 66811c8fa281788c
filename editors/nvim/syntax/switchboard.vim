" The chat buffer: Markdown, with the footer under each answer dimmed.
if exists('b:current_syntax')
  finish
endif
runtime! syntax/markdown.vim
unlet! b:current_syntax
syntax match switchboardFooter /^\*.* · .*\*$/
highlight default link switchboardFooter Comment
let b:current_syntax = 'switchboard'
