-- The chosen model is busy (the test makes Sonnet 4.5 answer 529): the error offers Retry and
-- Try <model>; `ga` asks which, and Try answers the prompt with the suggested model.
return {
  run = function(T)
    vim.cmd('Switchboard chat')
    T.wait_ready()
    require('switchboard.models').select(vim.fn.getcwd(), 'claude-sonnet-4.5')
    T.wait_notified('next messages use Claude Sonnet 4.5')
    local chat = T.send('Review this design')
    T.wait_idle(chat)
    local note = T.wait_notified('HTTP 529')
    T.contains(note.msg, 'Or switch to Claude Sonnet 4.0, which is not busy.', "the server's message")
    T.contains(note.msg, '[ga or :Switchboard action: Retry · Try Claude Sonnet 4.0]', 'both actions')
    T.choose('Try Claude Sonnet 4.0')
    T.keys('ga')
    T.wait(function()
      return chat.busy == nil and chat.last_result ~= nil
    end, 'the answer from the suggested model')
    T.eq(T.selects[1].items, { 'Retry', 'Try Claude Sonnet 4.0' }, 'the actions offered')
    T.eq(chat.last_result.routedModel, 'claude-sonnet-4.0', 'the suggested model answered')
    T.contains(T.text(chat.buf), '## Retry · Claude Sonnet 4.0\nSimulated reply from claude-sonnet-4-20250514',
      'its answer in the chat')
  end,
}
