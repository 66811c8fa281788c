-- gn starts a new conversation; gh (:Switchboard history) reopens an earlier one, which then continues.
return {
  run = function(T)
    vim.cmd('Switchboard chat')
    T.wait_ready()
    -- gn while an answer streams stops it, and nothing of it lands in the new conversation.
    local chat = T.send('An abandoned essay [[fake:slow=0.05 words=300]]')
    T.wait(function()
      return #chat.busy.answer.text > 20
    end, 'some streamed text')
    local abandoned = chat.conversation_id
    T.keys('gn')
    T.eq(chat.busy, nil, 'gn ends the streaming turn')
    local stored
    T.wait(function()
      require('switchboard.server').request(vim.fn.getcwd(), 'switchboard/conversation', {
        workspaceUri = vim.uri_from_fname(vim.fn.getcwd()),
        conversationId = abandoned,
      }, function(_, result)
        stored = result
      end)
      T.sleep(100)
      return stored and stored.turns[2].status == 'cancelled'
    end, 'the server to store the abandoned answer as cancelled', 3000)
    T.sleep(300)
    T.eq(T.lines(chat.buf), { '# Switchboard', '', '## You', '' }, 'a clean buffer after gn')
    T.send('First topic: unicode')
    T.wait_idle(chat)
    local first = chat.conversation_id
    T.keys('gn')
    T.eq(chat.conversation_id, nil, 'gn forgets the conversation')
    T.lacks(T.text(chat.buf), 'First topic', 'gn clears the buffer')
    T.send('Second topic: sockets')
    T.wait_idle(chat)
    T.ok(chat.conversation_id ~= first, 'a new conversation')
    vim.cmd('Switchboard new')
    T.eq(chat.conversation_id, nil, ':Switchboard new forgets the conversation')
    T.choose('First topic: unicode')
    T.keys('gh')
    T.wait(function()
      return chat.conversation_id == first
    end, 'the first conversation to open')
    local picker = T.selects[1]
    T.eq(#picker.items, 3, 'every conversation is offered (the abandoned one too)')
    T.ok(picker.items[1]:find('^Second topic: sockets  %(.*, 2 turns%)$'), 'newest first: ' .. picker.items[1])
    local text = T.text(chat.buf)
    T.contains(text, '# Switchboard · First topic: unicode', 'the title')
    T.contains(text, '## You\nFirst topic: unicode', 'its prompt')
    T.contains(text, 'Simulated reply from', 'its answer')
    T.lacks(text, 'sockets', 'nothing of the other conversation')
    T.send('More on that')
    T.wait_idle(chat)
    T.eq(chat.conversation_id, first, 'the reopened conversation continues')
    T.contains(T.text(chat.buf), '(turn 2; 2 earlier messages): More on that', 'with its history')
  end,
}
