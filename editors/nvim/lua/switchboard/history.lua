-- `:Switchboard history`: reopen one of this workspace's conversations in the chat.
local errors = require('switchboard.errors')
local server = require('switchboard.server')

local M = {}

function M.format_item(summary)
  local when = (summary.updatedAt or ''):sub(1, 16):gsub('T', ' ')
  return ('%s  (%s, %d turns)'):format(summary.title, when, summary.turnCount)
end

function M.open(root, conversation_id)
  server.request(root, 'switchboard/conversation', {
    workspaceUri = server.workspace_uri(root),
    conversationId = conversation_id,
  }, function(err, conversation)
    if err then
      errors.show(err)
      return
    end
    local chat = require('switchboard.chat').get(root)
    chat:show()
    chat:load(conversation)
  end)
end

function M.pick(root)
  server.request(root, 'switchboard/conversations', {
    workspaceUri = server.workspace_uri(root),
    limit = 200,
  }, function(err, result)
    if err then
      errors.show(err)
      return
    end
    if #result.conversations == 0 then
      vim.notify('Switchboard: no conversations in this workspace yet.', vim.log.levels.INFO)
      return
    end
    vim.ui.select(result.conversations, {
      prompt = 'Switchboard conversations',
      kind = 'switchboard_conversation',
      format_item = M.format_item,
    }, function(choice)
      if choice then
        M.open(root, choice.id)
      end
    end)
  end)
end

return M
