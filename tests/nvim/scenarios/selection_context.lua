-- :'<,'>Switchboard chat attaches the visual selection with its file and lines.
return {
  run = function(T)
    vim.cmd('edit main.py')
    T.keys('4GVj:Switchboard chat<CR>')
    local chat = T.wait(T.chat, 'the chat')
    T.eq(#chat.pending_context, 1, 'one attachment pending')
    local item = chat.pending_context[1]
    T.eq(item.range.start.line, 3, 'start line (0-based)')
    T.eq(item.range['end'].line, 4, 'end line (0-based)')
    T.eq(item.languageId, 'python', 'language')
    T.eq(item.text, 'def connect(path):\n    return sqlite3.connect(path)', 'the selected text')
    T.ok(item.uri:match('main%.py$'), 'the file: ' .. item.uri)
    local marks = vim.api.nvim_buf_get_extmarks(chat.buf, require('switchboard.transcript').context_ns, 0, -1,
      { details = true })
    T.eq(#marks, 1, 'the pending attachment is shown under the prompt heading')
    T.wait_ready()
    T.send('Explain this function')
    T.wait_idle(chat)
    local text = T.text(chat.buf)
    T.contains(text, '## You\nExplain this function\n> Context: `main.py` lines 4-5', 'the user turn shows it')
    T.contains(text, 'Attached from ' .. item.uri .. ' (lines 4-5)', 'the model received it')
    T.eq(#chat.pending_context, 0, 'sent once, then cleared')
  end,
}
