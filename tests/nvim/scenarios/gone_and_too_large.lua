-- A conversation deleted elsewhere (1005) offers a new one, which gets the same prompt; a selection too
-- large for the model (1006) is refused with the server's message, and the prompt and selection stay.
return {
  run = function(T)
    vim.cmd('Switchboard chat')
    T.wait_ready()
    local chat = T.send('Remember this')
    T.wait_idle(chat)
    local gone = chat.conversation_id
    local deleted
    require('switchboard.server').request(vim.fn.getcwd(), 'switchboard/deleteConversation', {
      workspaceUri = vim.uri_from_fname(vim.fn.getcwd()),
      conversationId = gone,
    }, function(err)
      deleted = not err
    end)
    T.wait(function()
      return deleted
    end, 'the conversation to be deleted')
    T.send('Still there?')
    T.wait_idle(chat)
    local note = T.wait_notified("No conversation '" .. gone .. "' in this workspace.")
    T.contains(note.msg, '[ga or :Switchboard action: New conversation]', 'the offered action')
    T.keys('ga')
    T.wait(function()
      return chat.busy == nil and chat.conversation_id and chat.conversation_id ~= gone
    end, 'the new conversation')
    T.contains(T.text(chat.buf), '## You\nStill there?', 'the prompt went to the new conversation')
    T.lacks(T.text(chat.buf), 'Remember this', 'a new buffer')

    -- About 1,000,000 characters: more than a 200,000-token context window.
    local big = vim.api.nvim_create_buf(true, false)
    local line = string.rep('x', 99)
    local lines = {}
    for i = 1, 10000 do
      lines[i] = line
    end
    vim.api.nvim_buf_set_lines(big, 0, -1, false, lines)
    vim.api.nvim_buf_set_name(big, vim.fn.getcwd() .. '/big.txt')
    vim.cmd('wincmd p')
    vim.api.nvim_set_current_buf(big)
    vim.cmd('%Switchboard chat')
    T.eq(#chat.pending_context, 1, 'the selection is attached')
    T.send('Summarize this')
    T.wait_idle(chat)
    note = T.wait_notified('do not fit')
    T.contains(note.msg, "context window. Attach less context.", "the server's message")
    T.eq(require('switchboard.transcript').input(chat.buf), 'Summarize this', 'the prompt is kept')
    T.eq(#chat.pending_context, 1, 'the selection is kept, to edit or resend')
    vim.cmd('Switchboard detach')
    T.eq(#chat.pending_context, 0, ':Switchboard detach drops it')
    T.send('Summarize this')
    T.wait_idle(chat)
    T.ok(chat.last_result and chat.last_result.text:find('Summarize this', 1, true), 'sent without it')
  end,
}
